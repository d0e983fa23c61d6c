// Runs xenbake-dump's entry point (or another tool's of the same shape) in-process and captures
// what it prints.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dom0tools/dump.h"

namespace dom0tools::testing {

struct DumpRun {
  int status = -1;
  std::string out;
  std::string err;
};

// Runs a tool's entry point `main_fn(argc, argv, out, err)` with both streams captured.
template <typename Main>
DumpRun RunCapturing(Main&& main_fn, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  char* out_buf = nullptr;
  char* err_buf = nullptr;
  size_t out_len = 0;
  size_t err_len = 0;
  std::FILE* out = ::open_memstream(&out_buf, &out_len);
  std::FILE* err = ::open_memstream(&err_buf, &err_len);
  DumpRun run;
  run.status = main_fn(static_cast<int>(argv.size()), argv.data(), out, err);
  std::fclose(out);
  std::fclose(err);
  run.out.assign(out_buf, out_len);
  run.err.assign(err_buf, err_len);
  std::free(out_buf);
  std::free(err_buf);
  return run;
}

inline DumpRun RunDumpMain(std::vector<std::string> args) {
  args.insert(args.begin(), "xenbake-dump");
  return RunCapturing([](int argc, const char* const* argv, std::FILE* out,
                         std::FILE* err) { return DumpMain(argc, argv, out, err); },
                      args);
}

}  // namespace dom0tools::testing

// Helpers shared by the tracefmt tests: files in and out, and the real captures in shared/data.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tracefmt::testing {

inline std::vector<std::byte> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

// A fresh path in the test's temporary directory, unique per process and name.
inline std::string TempPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) /
          ("tracefmt-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

// The real Xen captures (../shared/data), read in place.
inline std::string SharedCapture(const std::string& relative) {
  return std::string(XENBAKED_SHARED_DATA) + "/" + relative;
}

inline const std::vector<std::string>& RealCaptures() {
  static const std::vector<std::string> kCaptures = {"xen-4.17-qemu/trace-all.bin",
                                                     "xen-4.17-qemu/trace-sched.bin",
                                                     "xen-4.17-qemu-guests/trace-sched.bin"};
  return kCaptures;
}

}  // namespace tracefmt::testing

// Skips the test, saying why, when a real capture is not where the project keeps it.
#define SKIP_IF_MISSING(path)                           \
  if (!std::filesystem::exists(path))                   \
  GTEST_SKIP() << "real capture " << (path)             \
               << " is absent (shared/data not beside " \
                  "the project)"

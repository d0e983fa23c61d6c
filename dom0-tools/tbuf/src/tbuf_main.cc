#include "tbuf/tbuf_main.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/command_line.h"
#include "cli/exit_status.h"
#include "tbuf/tbuf_text.h"
#include "tbuf/xenctrl_control.h"
#include "tracefmt/events.h"

namespace xenbake::tbuf {
namespace {

using cli::kExitOk;
using cli::kExitUsage;
constexpr int kExitFailed = cli::kExitFailure;
constexpr uint32_t kDefaultPages = 32;  // xentrace's default

constexpr const char* kDescription =
    "Show and set Xen's trace buffers\n\n"
    "Size per CPU, event mask, CPU mask, on and off, through libxenctrl (on Xen, or against "
    "xenbake-sim with the libxen shim preloaded).";

constexpr const char* kFooter = R"HELP(
COMMANDS
  show      Size per CPU (pages, from t_info->tbuf_size), the event mask, the CPUs that
            have buffers, cpu_khz. Xen reports neither whether tracing is on nor the CPU
            mask; xenbaked's health line (xenbake-top) shows whether records arrive.
  set       Change the event mask (--mask), the CPU mask (--cpus) or the size (--size).
  enable    Set the masks given, allocate buffers of --size pages per CPU if none exist
            yet (default 32), and turn tracing on.
  disable   Turn tracing off. Buffers stay allocated; records in them stay readable.

VALUES
  --size    Pages (4 KiB) per CPU. Xen sets the size once per boot: tbuf_size= on its
            command line, or the first set or enable, wins; later sizes are refused.
  --mask    Event classes by name, comma-separated (gen, sched, dom0op, hvm, mem, pv,
            shadow, hw, guest, all), or a number such as 0x0002f000. A daemon needs sched.
  --cpus    A list such as 0-3,6, "all", or a hex bitmap such as 0x0f.

EXAMPLES
  xenbake-tbuf show
  xenbake-tbuf show --format json
  xenbake-tbuf set --mask sched,pv --cpus 0-3
  xenbake-tbuf enable --size 64 --mask sched
  LD_PRELOAD=libxenbake-shim.so XENBAKE_SIM=/dev/shm/xenbake-sim xenbake-tbuf show
)HELP";

struct Parsed {
  std::optional<uint32_t> pages;
  std::optional<uint32_t> mask;
  std::optional<std::vector<uint32_t>> cpus;
};

// Checks every value before anything is changed, so a typo changes nothing.
std::optional<Parsed> ParseValues(const TbufRequest& r, const HostCpus& host, std::FILE* err) {
  Parsed p;
  if (r.pages_text && !(p.pages = ParsePages(*r.pages_text))) {
    fmt::print(err, "xenbake-tbuf: --size {}: expected a number of pages, at least 1\n",
               *r.pages_text);
    return std::nullopt;
  }
  if (r.mask_text && !(p.mask = tracefmt::ParseEventMask(*r.mask_text))) {
    fmt::print(err,
               "xenbake-tbuf: --mask {}: expected class names (sched,pv,...), \"all\" or a "
               "number such as 0x0002f000\n",
               *r.mask_text);
    return std::nullopt;
  }
  if (r.cpus_text && !(p.cpus = ParseCpuList(*r.cpus_text, host.max_cpu_id))) {
    fmt::print(err, "xenbake-tbuf: --cpus {}: expected a list such as 0-3,6, all, or 0x0f\n",
               *r.cpus_text);
    return std::nullopt;
  }
  return p;
}

bool Check(const tracefmt::Status& status, std::FILE* err) {
  if (!status.ok()) fmt::print(err, "xenbake-tbuf: {}\n", status.error().Describe());
  return status.ok();
}

int Show(TraceBufferControl& control, bool json, std::FILE* out, std::FILE* err) {
  tracefmt::Result<TraceBufferState> state = control.Query();
  if (!state) {
    fmt::print(err, "xenbake-tbuf: {}\n", state.error().Describe());
    return kExitFailed;
  }
  if (json) {
    fmt::print(out, "{}\n", StateJson(*state).dump(2));
  } else {
    fmt::print(out, "{}", FormatState(*state));
  }
  return kExitOk;
}

int Change(const TbufRequest& r, TraceBufferControl& control, std::FILE* out, std::FILE* err) {
  tracefmt::Result<TraceBufferState> before = control.Query();
  if (!before) {
    fmt::print(err, "xenbake-tbuf: {}\n", before.error().Describe());
    return kExitFailed;
  }
  const std::optional<Parsed> p = ParseValues(r, before->host, err);
  if (!p) return kExitUsage;
  if (r.verb == TbufRequest::Verb::kSet && !p->pages && !p->mask && !p->cpus) {
    fmt::print(err, "xenbake-tbuf: set: nothing to set (give --size, --mask or --cpus)\n");
    return kExitUsage;
  }
  // Masks first, as xentrace does: records produced once tracing is on are already filtered.
  if (p->mask && !Check(control.SetEventMask(*p->mask), err)) return kExitFailed;
  if (p->cpus && !Check(control.SetCpuMask(*p->cpus), err)) return kExitFailed;
  if (r.verb == TbufRequest::Verb::kSet && p->pages) {
    if (before->pages_per_cpu && *before->pages_per_cpu != *p->pages) {
      fmt::print(err,
                 "xenbake-tbuf: buffers already exist with {} pages per CPU; Xen sets the size "
                 "once per boot\n",
                 *before->pages_per_cpu);
      return kExitFailed;
    }
    if (!Check(control.SetPagesPerCpu(*p->pages), err)) return kExitFailed;
  }
  if (r.verb == TbufRequest::Verb::kEnable) {
    const uint32_t pages = p->pages.value_or(kDefaultPages);
    if (p->pages && before->pages_per_cpu && *before->pages_per_cpu != pages) {
      fmt::print(err,
                 "xenbake-tbuf: note: buffers already exist with {} pages per CPU; --size {} "
                 "is ignored by Xen\n",
                 *before->pages_per_cpu, pages);
    }
    if (!Check(control.Enable(pages), err)) return kExitFailed;
  }
  return Show(control, /*json=*/false, out, err);
}

}  // namespace

int RunTbuf(const TbufRequest& r, TraceBufferControl& control, std::FILE* out, std::FILE* err) {
  switch (r.verb) {
    case TbufRequest::Verb::kShow:
      return Show(control, r.json, out, err);
    case TbufRequest::Verb::kDisable:
      if (!Check(control.Disable(), err)) return kExitFailed;
      fmt::print(out, "tracing disabled\n");
      return kExitOk;
    case TbufRequest::Verb::kSet:
    case TbufRequest::Verb::kEnable:
      return Change(r, control, out, err);
  }
  return kExitUsage;
}

int TbufMain(int argc, char** argv) {
  CLI::App app{kDescription};
  cli::Configure(app, "xenbake-tbuf");
  app.footer(std::string(kFooter) +
             cli::ExitStatusSection(
                 {.ok = "done",
                  .failure = "not on Xen, not permitted, or Xen refused (the message says which)",
                  .usage = "a value of --size, --mask or --cpus, or set with nothing to set",
                  .partial = ""}));
  app.require_subcommand(1);
  TbufRequest request;
  std::string pages, mask, cpus;

  CLI::App* show = app.add_subcommand("show", "show the trace buffers' state");
  std::string show_format;
  cli::AddFormat(*show, show_format, {"text", "json"}, "text or json");
  CLI::App* set = app.add_subcommand("set", "change the event mask, CPU mask or size");
  CLI::App* enable = app.add_subcommand("enable", "allocate buffers if needed and start tracing");
  app.add_subcommand("disable", "stop tracing");
  // The same three values for set and enable; what was given is known by each option's count.
  struct ValueOptions {
    CLI::Option* size;
    CLI::Option* mask;
    CLI::Option* cpus;
  };
  const auto add_values = [&](CLI::App* sub) {
    return ValueOptions{
        sub->add_option("--size", pages, "Pages per CPU (set once per boot)")->type_name("PAGES"),
        sub->add_option("--mask", mask, "Event classes (sched,pv,...) or a number")
            ->type_name("MASK"),
        sub->add_option("--cpus", cpus, "CPUs to trace: 0-3,6 / all / 0x0f")->type_name("CPUS")};
  };
  const ValueOptions set_values = add_values(set);
  const ValueOptions enable_values = add_values(enable);
  if (std::optional<int> status = cli::Parse(app, argc, argv, stdout, stderr, 8)) return *status;
  request.json = show_format == "json";
  CLI::App* chosen = app.get_subcommands().front();
  const std::string verb = chosen->get_name();
  request.verb = verb == "show"     ? TbufRequest::Verb::kShow
                 : verb == "set"    ? TbufRequest::Verb::kSet
                 : verb == "enable" ? TbufRequest::Verb::kEnable
                                    : TbufRequest::Verb::kDisable;
  if (chosen == set || chosen == enable) {
    const ValueOptions& given = chosen == set ? set_values : enable_values;
    if (given.size->count()) request.pages_text = pages;
    if (given.mask->count()) request.mask_text = mask;
    if (given.cpus->count()) request.cpus_text = cpus;
  }

  tracefmt::Result<std::unique_ptr<TraceBufferControl>> control = OpenXenctrlTraceBufferControl();
  if (!control) {
    fmt::print(stderr, "xenbake-tbuf: {}\n", control.error().Describe());
    return kExitFailed;
  }
  return RunTbuf(request, **control, stdout, stderr);
}

}  // namespace xenbake::tbuf

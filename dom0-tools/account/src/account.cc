#include "dom0tools/account.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <sstream>
#include <utility>

#include "account_report.h"
#include "cli/command_line.h"
#include "cli/exit_status.h"
#include "tracefmt/clock.h"
#include "tracefmt/merge.h"
#include "tracefmt/trace_file.h"

namespace dom0tools {
namespace {

constexpr std::string_view kDescription =
    "Per-domain, per-vCPU and per-CPU CPU accounting of a xentrace capture";

constexpr std::string_view kFooter = R"(HOW IT COUNTS
  Reads a trace file written by xentrace (or by xenbaked's raw capture), merges the per-CPU
  streams by TSC and runs xenbaked's accounting engine over it at full speed: the same engine,
  with the same results, as the daemon runs live.

  For every vCPU a runstate machine driven by SCHED_RUNSTATE_CHANGE records accumulates the
  time running, runnable (waiting for a physical CPU), blocked and offline, and unknown: time
  the trace cannot vouch for. The five add up to the vCPU's time since its domain's creation
  (or the capture's start), and the true time in each state lies within [its figure, its
  figure + unknown]. Unknown is the time before the vCPU's first record; the part of a
  LOST_RECORDS gap that could have hidden a change of it (a vCPU running on the lossy CPU, or
  any vCPU not running: its wake may have been written there); and the interval ended by a
  change whose old state contradicts the known one (an anomaly; the record's new state is
  trusted from then on).

  Per domain: the sums over its vCPUs, dispatches (changes into running), completed run slices
  (count, min/mean/max), wakes and blocks (SCHED_WAKE/BLOCK), the slices the scheduler allocated
  (SCHED_SWITCH_INFNEXT next_time; "no limit" is not counted), hypercalls and I/O-related
  records (grant, event-channel and HVM port/MMIO records) made while it ran on a CPU, and the
  lost records whose LOST_RECORDS report names it. Domain ids may be reused within a capture:
  each incarnation is listed on its own, and a destroyed one shows its final totals.

  Per physical CPU: elapsed time (first timed record to the end of the capture), the time
  accounted to some vCPU (the idle domain 32767 included), the capture ratio
  accounted / (elapsed - lost gap), the time at the start before any dispatch was seen
  (unknown_start), the LOST_RECORDS counts reported on that CPU and the time they cover
  (first lost TSC to the report, within the CPU's own span).

  Open intervals are counted up to the newest record of the capture.

OUTPUT
  --format text (default): a table of domains (and their vCPUs) and a table of CPUs, times in seconds.
  --format json: one JSON object with file, cpu_khz, records, elapsed_ns, lost_records, anomalies,
  anomaly_kinds {runstate_mismatch, switch_mismatch, bad_id, time_backwards}, cpus [{cpu,
  records, elapsed_ns, accounted_ns, capture_ratio, unknown_start_ns, lost_records,
  lost_gap_ns, wrap_records, hypercalls, io, unattributed}], domains [{domid, instance,
  destroyed, first_seen_ns, last_seen_ns, running_ns, runnable_ns, blocked_ns, offline_ns,
  unknown_ns, dispatches, slices, slice_min_ns, slice_mean_ns, slice_max_ns, allocated_ns, allocations,
  wakes, blocks, hypercalls, io, lost_records, vcpus [{vcpu, running_ns, runnable_ns,
  blocked_ns, offline_ns, unknown_ns, dispatches, wakes, blocks, state, last_cpu}]}], and "error"
  {message, offset} when the file is damaged.

CPU FREQUENCY
  A xentrace file does not record it. --cpu-khz (xc_physinfo's cpu_khz; `xl info` shows it as
  cpu_mhz) wins; otherwise the sidecar FILE.meta written by xenbaked tools is read. Without
  either, xenbake-account refuses to guess.

DAMAGED INPUT
  A truncated or corrupt file is accounted up to the damage: the totals up to there are printed,
  a message with the byte offset goes to stderr, and the exit status is 3.
)";

constexpr std::string_view kExamples = R"(
EXAMPLES
  xenbake-account --cpu-khz 2596120 trace.bin
  xenbake-account --cpu-khz 2596120 -f json trace.bin | jq '.domains[] | {domid, running_ns}'
  xenbake-account --format json --no-vcpus -o totals.json capture.bin   # kHz from capture.bin.meta)";

bool SameIncarnation(const xenbaked::DomainTotals& a, const xenbaked::DomainTotals& b) {
  return a.domid == b.domid && a.instance == b.instance;
}

}  // namespace

tracefmt::Result<AccountResult> AccountFile(const std::string& path, uint64_t cpu_khz) {
  tracefmt::Result<tracefmt::TraceFileReader> file = tracefmt::TraceFileReader::Open(path);
  if (!file) return file.error();
  AccountResult result;
  result.file_bytes = file->size();
  xenbaked::AccountingEngine engine({.cpu_khz = cpu_khz});
  std::vector<xenbaked::DomainTotals> finals;
  engine.OnFinal([&](const xenbaked::DomainTotals& t) { finals.push_back(t); });
  tracefmt::MergedTraceReader merged(*file);
  engine.AddAll(merged);  // zero-copy: each record is read where it lies in the mapping
  result.damage = merged.error();
  result.totals = engine.Snapshot(engine.now_tsc());
  for (xenbaked::DomainTotals& f : finals) {
    const bool listed =
        std::any_of(result.totals.domains.begin(), result.totals.domains.end(),
                    [&](const xenbaked::DomainTotals& d) { return SameIncarnation(d, f); });
    if (!listed) result.replaced.push_back(std::move(f));
  }
  return result;
}

std::vector<xenbaked::DomainTotals> AllDomains(const AccountResult& result) {
  std::vector<xenbaked::DomainTotals> all = result.totals.domains;
  all.insert(all.end(), result.replaced.begin(), result.replaced.end());
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.domid != b.domid ? a.domid < b.domid : a.instance < b.instance;
  });
  return all;
}

int RunAccount(const AccountOptions& o, std::FILE* out, std::FILE* err) {
  const tracefmt::Result<uint64_t> khz = tracefmt::ResolveCpuKhz(o.cpu_khz, o.path);
  if (!khz) {
    fmt::print(err, "xenbake-account: {}\n", khz.error().Describe());
    // No frequency anywhere: the command line must give it; an unreadable sidecar: a failure.
    return ::access((o.path + ".meta").c_str(), F_OK) != 0 ? cli::kExitUsage : cli::kExitFailure;
  }
  tracefmt::Result<AccountResult> result = AccountFile(o.path, *khz);
  if (!result) {
    fmt::print(err, "xenbake-account: {}\n", result.error().Describe());
    return cli::kExitFailure;
  }
  const std::string text =
      o.json ? internal::AccountJson(*result, o).dump(2) + "\n" : internal::AccountText(*result, o);
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
  if (result->damage) {
    fmt::print(err, "xenbake-account: {}: {} (totals above are up to there)\n", o.path,
               result->damage->Describe());
    return cli::kExitPartial;
  }
  return cli::kExitOk;
}

int AccountMain(int argc, const char* const* argv, std::FILE* out, std::FILE* err) {
  CLI::App app{std::string(kDescription)};
  cli::Configure(app, "xenbake-account");
  app.footer(std::string(kFooter) +
             cli::ExitStatusSection(
                 {.ok = "the whole file was accounted",
                  .failure = "FILE cannot be opened or is not a trace file, or the output cannot "
                             "be written",
                  .usage = "no CPU frequency (give --cpu-khz)",
                  .partial = "the file is truncated or corrupt: the totals up to the damage are "
                             "printed, stderr says where"}) +
             std::string(kExamples));
  AccountOptions o;
  app.add_option("FILE", o.path, "Trace file to read (xentrace format)")
      ->required()
      ->type_name("FILE");
  app.add_option("--cpu-khz", o.cpu_khz,
                 "TSC frequency in kHz (xc_physinfo cpu_khz; default: the FILE.meta sidecar)")
      ->check(CLI::Range(tracefmt::kMinCpuKhz, tracefmt::kMaxCpuKhz))
      ->type_name("KHZ");
  std::string format;
  cli::AddFormat(app, format, {"text", "json"}, "text (tables) or json (one object)");
  cli::AddOutput(app, o.output, "the tables or the JSON object");
  bool no_vcpus = false;
  app.add_flag("--no-vcpus", no_vcpus, "Per-domain totals only, without the per-vCPU ones");
  if (std::optional<int> status = cli::Parse(app, argc, argv, out, err)) return *status;
  o.json = format == "json";
  o.vcpus = !no_vcpus;
  if (std::optional<int> status = cli::RefuseOutputOverInput("xenbake-account", {o.output},
                                                             {o.path, o.path + ".meta"}, err))
    return *status;
  return cli::WithOutput(o.output, out, err, "xenbake-account",
                         [&](std::FILE* file) { return RunAccount(o, file, err); });
}

}  // namespace dom0tools

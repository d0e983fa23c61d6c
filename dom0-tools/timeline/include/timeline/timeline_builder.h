// timeline/timeline_builder.h — merged Xen trace records in, a Perfetto timeline out.
//
// The layout a person sees in the Perfetto UI:
//
//   process "domain N (name)"   pid N, one per domain ("idle" for the idle domain 32767), with
//     thread "vCPU V"           tid (N << 16) | V, one per vCPU: slices "running", "runnable",
//                               "blocked", "offline" (ph "X"), from TRC_SCHED_RUNSTATE_CHANGE
//   process "lost records"      pid kLostRecordsPid, one thread per physical CPU: each
//                               TRC_LOST_RECORDS as a slice from its first lost TSC to the report,
//                               and a global instant (ph "i", scope "g") where the loss began
//   process "physical CPUs"     pid kPhysicalCpusPid: counter "cpuC run queue" per CPU
//
// A vCPU's slices start at its first runstate change (what it did before is unknown) and run
// back to back: each change closes the slice in the old state and opens one in the new, so the
// slices of a vCPU are contiguous, never overlap, and sum to its span (first change to the end of
// the trace, where open slices are closed with "open_at_end": true).
//
// Run-queue length of CPU C: the number of guest vCPUs (idle domain excluded) now runnable whose
// queue is C, where a vCPU's queue is the physical CPU it last ran on (the CPU of its last change
// to running), or, if it has not run yet in the trace, the CPU whose record made it runnable.
// Credit2 shares run queues between CPUs of a socket, so this is the per-CPU view of "who waits
// for the CPU it last ran on" rather than the scheduler's own queue.
//
// Memory is bounded by the number of vCPUs and CPUs, never by the trace's length: nothing is kept
// but each vCPU's open slice and each CPU's counter.
//
//   TraceEventWriter out(file);
//   TimelineBuilder timeline({.cpu_khz = 2596120}, out);
//   tracefmt::MergedRecord m;
//   while (merged.Next(m)) timeline.Add(m);
//   timeline.Finish();
//   out.Finish(timeline.Summary());
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "timeline/trace_event_writer.h"
#include "tracefmt/merge.h"

namespace xenbake::timeline {

inline constexpr uint32_t kLostRecordsPid = 0x10000;  // above every domain id
inline constexpr uint32_t kPhysicalCpusPid = 0x10001;
// Thread ids are unique across the whole trace, so viewers that key threads by tid alone agree.
constexpr uint32_t VcpuTid(uint32_t domid, uint32_t vcpu) {
  return (domid << 16) | vcpu;
}

struct TimelineConfig {
  uint64_t cpu_khz = 0;                          // TSC frequency
  std::map<uint32_t, std::string> domain_names;  // untrusted; sanitised before use
};

struct TimelineStats {
  uint64_t records = 0;
  uint64_t runstate_changes = 0;
  uint64_t slices = 0;
  uint64_t lost_reports = 0;  // TRC_LOST_RECORDS records
  uint64_t lost_records = 0;  // what they report dropped
  uint64_t counter_samples = 0;
  uint64_t anomalies = 0;  // changes whose old state contradicts the open slice, or
                           // records older than the slice they would close
  uint64_t domains = 0;
  uint64_t vcpus = 0;
  uint64_t first_tsc = 0;  // the time origin: ts 0 in the output
  uint64_t last_tsc = 0;
};

class TimelineBuilder {
 public:
  // `out` must outlive the builder.
  TimelineBuilder(const TimelineConfig& config, TraceEventWriter& out);
  ~TimelineBuilder();
  TimelineBuilder(const TimelineBuilder&) = delete;
  TimelineBuilder& operator=(const TimelineBuilder&) = delete;

  // Records in merged TSC order. A record older than the slice it would close is an anomaly: the
  // slice is closed with zero length rather than a negative one.
  void Add(const tracefmt::MergedRecord& m);
  // Closes every open slice at the newest TSC seen. Call once, after the last Add.
  void Finish();

  const TimelineStats& stats() const;
  // The stats and the configuration as JSON, for the output's "otherData".
  nlohmann::json Summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xenbake::timeline

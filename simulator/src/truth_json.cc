#include "simulator/truth_json.h"

namespace simulator {
namespace {

nlohmann::json StateTimes(const std::array<uint64_t, kRunstates>& ns) {
  return {
      {"running_ns", ns[0]}, {"runnable_ns", ns[1]}, {"blocked_ns", ns[2]}, {"offline_ns", ns[3]}};
}

nlohmann::json CpuToJson(const CpuTruth& c) {
  const CpuTraceStats& s = c.trace;
  return {{"cpu", c.cpu},
          {"has_buffer", c.has_buffer},
          {"records_written", s.records_written},
          {"bytes_written", s.bytes_written},
          {"dropped", s.dropped},
          {"lost_records_written", s.lost_records_written},
          {"dropped_reported", s.dropped_reported},
          {"dropped_cleared", s.dropped_cleared},
          {"pending_lost", s.pending_lost},
          {"wrap_records", s.wrap_records},
          {"notifications", s.notifications},
          {"filtered", s.filtered}};
}

}  // namespace

nlohmann::json TruthToJson(const Truth& truth) {
  nlohmann::json domains = nlohmann::json::array();
  for (const DomainTruth& d : truth.domains) {
    nlohmann::json vcpus = nlohmann::json::array();
    for (const VcpuTruth& v : d.vcpus) {
      nlohmann::json jv = StateTimes(v.state_ns);
      jv["vcpu"] = v.vcpu;
      jv["state"] = tracefmt::RunstateName(v.state);
      jv["dispatches"] = v.dispatches;
      jv["wakes"] = v.wakes;
      jv["blocks"] = v.blocks;
      jv["preemptions"] = v.preemptions;
      vcpus.push_back(std::move(jv));
    }
    std::array<uint64_t, kRunstates> totals{};
    for (size_t s = 0; s < kRunstates; ++s)
      totals[s] = d.TotalNs(static_cast<tracefmt::Runstate>(s));
    nlohmann::json jd = StateTimes(totals);
    jd["id"] = d.id;
    jd["name"] = d.name;
    jd["alive"] = d.alive;
    jd["created_ns"] = d.created_ns;
    jd["destroyed_ns"] = d.destroyed_ns;
    jd["dispatches"] = d.TotalDispatches();
    jd["hypercalls"] = d.hypercalls;
    jd["io_events"] = d.io_events;
    jd["vcpus"] = std::move(vcpus);
    domains.push_back(std::move(jd));
  }
  nlohmann::json cpus = nlohmann::json::array();
  for (const CpuTruth& c : truth.cpus) cpus.push_back(CpuToJson(c));
  return {{"now_ns", truth.now_ns},
          {"cpu_khz", truth.cpu_khz},
          {"seed", truth.seed},
          {"records_emitted", truth.records_emitted},
          {"records_written", truth.TotalWritten()},
          {"dropped", truth.TotalDropped()},
          {"dropped_reported", truth.TotalReported()},
          {"cpus", std::move(cpus)},
          {"domains", std::move(domains)}};
}

}  // namespace simulator

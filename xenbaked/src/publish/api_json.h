// JSON renderings of the published figures, for the socket API (private to xenbaked_publish).
#pragma once

#include <nlohmann/json.hpp>

#include "xenbaked/publish/publish_view.h"

namespace xenbaked::publish::api {

nlohmann::json CountersJson(const DomainCounters& c);
nlohmann::json CpuJson(const CpuTotals& c);
// A domain's totals, plus its figures in each of `latest` (the newest closed windows) it was
// alive in; with `vcpus`, its vCPUs' totals too.
nlohmann::json DomainJson(const DomainTotals& d, const DomainNames& names,
                          const std::vector<const Window*>& latest, bool vcpus);
nlohmann::json WindowJson(const Window& w, const DomainNames& names);
nlohmann::json HealthJson(const DaemonHealth& h);
// One domain's (or the host's) reconciliation with the hypervisor's cpu_time.
nlohmann::json DomainReconcileJson(const DomainReconcile& d);
// The whole report: counts, the host's figures and each domain's; null when not reconciling.
nlohmann::json ReconcileJson(const std::optional<ReconcileReport>& r);

}  // namespace xenbaked::publish::api

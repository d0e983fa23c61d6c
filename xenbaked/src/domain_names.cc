#include "xenbaked/domain_names.h"

#include <algorithm>

#include "tracefmt/events.h"

namespace xenbaked {

size_t DomainNameCache::Update(std::span<const DomainTotals> domains, uint64_t now_ns,
                               const Lookup& lookup) {
  // Marks the ids still held, so the others can be let go after the pass.
  std::unordered_map<uint32_t, Entry> held;
  held.reserve(domains.size());
  size_t made = 0;
  for (const DomainTotals& d : domains) {
    // The idle domain has no xenstore entry; every renderer names it itself.
    if (d.domid == tracefmt::ev::kIdleDomain) continue;
    Entry entry;
    if (auto it = entries_.find(d.domid); it != entries_.end()) {
      entry = it->second;
      if (entry.instance != d.instance) {
        // The id was reused: the name belonged to the destroyed domain.
        entry = Entry{};
        names_.erase(d.domid);
      }
    }
    entry.instance = d.instance;
    if (!entry.named && now_ns >= entry.next_try_ns && made < options_.max_lookups_per_update) {
      ++made;
      tracefmt::Result<std::string> name = lookup(d.domid);
      if (name && !name->empty()) {
        // xenstore values run to 4 KiB: memory follows the domains, not what a name claims.
        if (name->size() > kMaxDomainNameBytes) name->resize(kMaxDomainNameBytes);
        names_[d.domid] = std::move(*name);
        entry.named = true;
      } else {
        entry.backoff_ns = entry.backoff_ns == 0
                               ? options_.first_retry_ns
                               : std::min(entry.backoff_ns * 2, options_.max_retry_ns);
        entry.next_try_ns = now_ns + entry.backoff_ns;
      }
    }
    held[d.domid] = entry;
  }
  // Domains no longer held (destroyed and published) lose their names: a later domain with the
  // same id is looked up afresh.
  std::erase_if(names_, [&](const auto& kv) { return !held.contains(kv.first); });
  entries_ = std::move(held);
  lookups_ += made;
  return made;
}

}  // namespace xenbaked

// xenbaked/domain_names.h — domain names looked up once per domain, not read for every domain at
// every publication.
//
// The domains to name are those the accounting holds (the trace's domains: a domain created
// while the daemon runs is named as soon as its first records are accounted). At each
// publication `Update` looks up only:
//   - ids it has not named yet (new domains, and domains whose incarnation changed: Xen reuses a
//     destroyed domain's id, and the engine gives the new domain a new `instance`);
//   - ids whose earlier lookup found no name, once their back-off has run out: the toolstack
//     writes /local/domain/<id>/name some time after the domain exists, and a domain may never
//     get one, so the retries space out (1 s, 2 s, 4 s, ... up to `max_retry_ns`) rather than
//     cost a xenstore read per second forever.
// A publication with no new domains makes no lookup at all. A name is dropped when its domain
// leaves the accounting (destroyed and published). A rename (`xl rename`) is not followed: the
// name is the one found at the first successful lookup, until `ForgetAll` (the daemon calls it on
// SIGHUP) or the domain's end.
//
//   DomainNameCache names;
//   names.Update(snapshot.domains, now_ns, [&](uint32_t id) { return hv.DomainName(id); });
//   view.names = names.names();
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_map>

#include "tracefmt/result.h"
#include "xenbaked/accounting.h"

namespace xenbaked {

// Longer names are cut (every renderer cuts them shorter still, and sanitises them).
inline constexpr size_t kMaxDomainNameBytes = 256;

struct DomainNameCacheOptions {
  uint64_t first_retry_ns = 1'000'000'000;  // after a lookup that found no name
  uint64_t max_retry_ns = 60'000'000'000;   // the back-off doubles up to this
  size_t max_lookups_per_update = 1024;     // the rest wait for the next update
};

class DomainNameCache {
 public:
  // Answers one domain's name; an error (no name yet, no xenstore) is retried later.
  using Lookup = std::function<tracefmt::Result<std::string>(uint32_t domid)>;
  using Names = std::unordered_map<uint32_t, std::string>;

  explicit DomainNameCache(DomainNameCacheOptions options = {}) : options_(options) {}

  // Brings the names in line with `domains` (by domid, as AccountingSnapshot lists them) at
  // monotonic time `now_ns`. Returns the lookups made.
  size_t Update(std::span<const DomainTotals> domains, uint64_t now_ns, const Lookup& lookup);
  // Every name is looked up again at the next Update (renames are picked up then).
  void ForgetAll() { entries_.clear(); }

  // The names found, by domid; domains without a name yet have none.
  const Names& names() const { return names_; }
  uint64_t lookups() const { return lookups_; }

 private:
  struct Entry {
    uint64_t instance = 0;
    bool named = false;
    uint64_t next_try_ns = 0;  // when not named
    uint64_t backoff_ns = 0;
  };
  DomainNameCacheOptions options_;
  std::unordered_map<uint32_t, Entry> entries_;
  Names names_;
  uint64_t lookups_ = 0;
};

}  // namespace xenbaked

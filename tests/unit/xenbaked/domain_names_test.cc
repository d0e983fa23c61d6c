// DomainNameCache: names looked up once per domain incarnation, never per publication, with a
// bounded back-off for domains whose name is not written yet. The lookup double counts every
// call (each would be a xenstore read on Xen).
#include "xenbaked/domain_names.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include "tracefmt/events.h"

namespace xenbaked {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

// What xenstore holds: /local/domain/<id>/name, absent until written.
struct FakeXenstore {
  std::map<uint32_t, std::string> names;
  std::map<uint32_t, int> reads;  // by domid
  int total_reads = 0;
  DomainNameCache::Lookup lookup() {
    return [this](uint32_t id) -> tracefmt::Result<std::string> {
      ++reads[id];
      ++total_reads;
      auto it = names.find(id);
      if (it == names.end()) return tracefmt::MakeError(tracefmt::ErrorCode::kNotFound, "no name");
      return it->second;
    };
  }
};

DomainTotals Domain(uint32_t id, uint64_t instance = 1) {
  DomainTotals d;
  d.domid = id;
  d.instance = instance;
  return d;
}

TEST(DomainNameCache, PublicationsWithNoNewDomainMakeNoLookup) {
  FakeXenstore xs;
  for (uint32_t id = 0; id < 1000; ++id) xs.names[id] = fmt::format("guest-{}", id);
  std::vector<DomainTotals> domains;
  for (uint32_t id = 0; id < 1000; ++id) domains.push_back(Domain(id));
  DomainNameCache cache;
  EXPECT_EQ(cache.Update(domains, 0, xs.lookup()), 1000u);
  EXPECT_EQ(cache.names().at(999), "guest-999");
  for (uint64_t s = 1; s <= 100; ++s)
    EXPECT_EQ(cache.Update(domains, s * kSecond, xs.lookup()), 0u);
  EXPECT_EQ(xs.total_reads, 1000);
  EXPECT_EQ(cache.lookups(), 1000u);
}

TEST(DomainNameCache, ADomainCreatedLaterIsLookedUpAlone) {
  FakeXenstore xs;
  xs.names = {{0, "Domain-0"}, {1, "web"}};
  std::vector<DomainTotals> domains = {Domain(0), Domain(1)};
  DomainNameCache cache;
  cache.Update(domains, 0, xs.lookup());
  xs.names[7] = "db";
  domains.push_back(Domain(7));
  EXPECT_EQ(cache.Update(domains, kSecond, xs.lookup()), 1u);
  EXPECT_EQ(xs.reads[7], 1);
  EXPECT_EQ(xs.reads[1], 1);
  EXPECT_EQ(cache.names().at(7), "db");
}

TEST(DomainNameCache, ALongNameIsCut) {
  FakeXenstore xs;
  xs.names[1] = std::string(4096, 'x');
  DomainNameCache cache;
  cache.Update(std::vector<DomainTotals>{Domain(1)}, 0, xs.lookup());
  EXPECT_EQ(cache.names().at(1).size(), kMaxDomainNameBytes);
}

TEST(DomainNameCache, TheIdleDomainIsNeverLookedUp) {
  FakeXenstore xs;
  DomainNameCache cache;
  cache.Update(std::vector<DomainTotals>{Domain(tracefmt::ev::kIdleDomain)}, 0, xs.lookup());
  EXPECT_EQ(xs.total_reads, 0);
}

// The toolstack writes the name after the domain exists: retried, with a back-off that doubles
// to its cap, so a domain that never gets a name costs a read a minute, not a read a second.
TEST(DomainNameCache, ANameWrittenLateIsFoundAndRetriesBackOff) {
  FakeXenstore xs;
  const std::vector<DomainTotals> domains = {Domain(3)};
  DomainNameCacheOptions options;
  options.max_retry_ns = 8 * kSecond;
  DomainNameCache cache(options);
  for (uint64_t s = 0; s <= 60; ++s) cache.Update(domains, s * kSecond, xs.lookup());
  // Tries at 0, 1, 3, 7, 15, then every 8 s: 23, 31, 39, 47, 55.
  EXPECT_EQ(xs.reads[3], 10);
  EXPECT_FALSE(cache.names().contains(3));
  xs.names[3] = "late";
  for (uint64_t s = 61; s <= 63; ++s) cache.Update(domains, s * kSecond, xs.lookup());
  EXPECT_EQ(xs.reads[3], 11);  // the try at 63 s
  EXPECT_EQ(cache.names().at(3), "late");
  for (uint64_t s = 64; s <= 200; ++s) cache.Update(domains, s * kSecond, xs.lookup());
  EXPECT_EQ(xs.reads[3], 11);
}

// Xen reuses a destroyed domain's id: the new incarnation (a new engine instance) is looked up,
// whether the old one was already forgotten or is still listed as destroyed.
TEST(DomainNameCache, AReusedIdGetsTheNewDomainsName) {
  FakeXenstore xs;
  xs.names[5] = "old";
  DomainNameCache cache;
  cache.Update(std::vector<DomainTotals>{Domain(5, 1)}, 0, xs.lookup());
  EXPECT_EQ(cache.names().at(5), "old");
  xs.names[5] = "new";
  cache.Update(std::vector<DomainTotals>{Domain(5, 2)}, kSecond, xs.lookup());
  EXPECT_EQ(cache.names().at(5), "new");

  // Destroyed and forgotten (gone from the snapshot): the name goes with it.
  cache.Update(std::vector<DomainTotals>{}, 2 * kSecond, xs.lookup());
  EXPECT_FALSE(cache.names().contains(5));
  xs.names.erase(5);  // the next domain 5 has no name yet: no stale one is shown
  cache.Update(std::vector<DomainTotals>{Domain(5, 3)}, 3 * kSecond, xs.lookup());
  EXPECT_FALSE(cache.names().contains(5));
  EXPECT_EQ(xs.reads[5], 3);
}

TEST(DomainNameCache, ForgetAllLooksEveryNameUpAgain) {
  FakeXenstore xs;
  xs.names[2] = "before";
  const std::vector<DomainTotals> domains = {Domain(2)};
  DomainNameCache cache;
  cache.Update(domains, 0, xs.lookup());
  xs.names[2] = "renamed";  // xl rename: not followed by itself
  cache.Update(domains, kSecond, xs.lookup());
  EXPECT_EQ(cache.names().at(2), "before");
  cache.ForgetAll();
  cache.Update(domains, 2 * kSecond, xs.lookup());
  EXPECT_EQ(cache.names().at(2), "renamed");
}

TEST(DomainNameCache, LookupsPerUpdateAreBounded) {
  FakeXenstore xs;
  std::vector<DomainTotals> domains;
  for (uint32_t id = 0; id < 10; ++id) {
    domains.push_back(Domain(id));
    xs.names.try_emplace(id, fmt::format("d{}", id));
  }
  DomainNameCacheOptions options;
  options.max_lookups_per_update = 4;
  DomainNameCache cache(options);
  EXPECT_EQ(cache.Update(domains, 0, xs.lookup()), 4u);
  EXPECT_EQ(cache.Update(domains, 1, xs.lookup()), 4u);
  EXPECT_EQ(cache.Update(domains, 2, xs.lookup()), 2u);
  EXPECT_EQ(cache.names().size(), 10u);
}

}  // namespace
}  // namespace xenbaked

// A GoogleTest fixture for the accounting engine tests: hand-built records in, snapshots out.
#pragma once

#include <gtest/gtest.h>

#include "accounting_test_util.h"
#include "xenbaked/accounting.h"

namespace xenbaked::testing {

// An engine at 1 GHz fed hand-built records, and lookups in its snapshots.
class EngineTest : public ::testing::Test {
 protected:
  AccountingEngine engine{{.cpu_khz = kOneGhzKhz}};

  void Add(uint32_t cpu, const tracefmt::Record& rec) { engine.Add(cpu, rec.tsc, rec); }
  void Change(uint32_t cpu, uint32_t dom, uint32_t vcpu, Runstate from, Runstate to, uint64_t tsc) {
    Add(cpu, RunstateChange(dom, vcpu, from, to, tsc));
  }
  static const DomainTotals* Find(const AccountingSnapshot& s, uint32_t domid) {
    for (const DomainTotals& d : s.domains)
      if (d.domid == domid) return &d;
    return nullptr;
  }
  static const CpuTotals* FindCpu(const AccountingSnapshot& s, uint32_t cpu) {
    for (const CpuTotals& c : s.cpus)
      if (c.cpu == cpu) return &c;
    return nullptr;
  }
};

}  // namespace xenbaked::testing

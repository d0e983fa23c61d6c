// Checks the project's own spelling of Xen's trace constants (tracefmt/events.h, record.h,
// ring.h) against Xen's public <xen/trace.h> from libxen-dev. This translation unit alone
// includes Xen's header, inside extern "C" and compiled as gnu++20 (Xen's headers are written for
// GNU C); tracefmt's public headers never include it.
//
// Every pair is checked twice: by static_assert, so a wrong constant fails the build, and by
// EXPECT over a table, so the test log names each constant it compared.
#include <cstdint>
#include <cstring>
#include <string_view>

extern "C" {
#include <xen/trace.h>
}

#include <gtest/gtest.h>

#include "tracefmt/events.h"
#include "tracefmt/record.h"
#include "tracefmt/ring.h"

namespace tracefmt {
namespace {

struct ConstantPair {
  std::string_view name;
  uint64_t ours;
  uint64_t xens;
};

#define XEN_CONSTANT(ours, xens)                                        \
  ConstantPair {                                                        \
#xens, static_cast < uint64_t>(ours), static_cast < uint64_t>(xens) \
  }

// Constants defined by the public header.
constexpr ConstantPair kPublic[] = {
    XEN_CONSTANT(ev::kClassShift, TRC_CLS_SHIFT),
    XEN_CONSTANT(ev::kSubclassShift, TRC_SUBCLS_SHIFT),
    XEN_CONSTANT(ev::kGen, TRC_GEN),
    XEN_CONSTANT(ev::kSched, TRC_SCHED),
    XEN_CONSTANT(ev::kDom0Op, TRC_DOM0OP),
    XEN_CONSTANT(ev::kHvm, TRC_HVM),
    XEN_CONSTANT(ev::kMem, TRC_MEM),
    XEN_CONSTANT(ev::kPv, TRC_PV),
    XEN_CONSTANT(ev::kShadow, TRC_SHADOW),
    XEN_CONSTANT(ev::kHw, TRC_HW),
    XEN_CONSTANT(ev::kGuest, TRC_GUEST),
    XEN_CONSTANT(ev::kAll, TRC_ALL),
    XEN_CONSTANT(ev::kSchedMin, TRC_SCHED_MIN),
    XEN_CONSTANT(ev::kSchedClass, TRC_SCHED_CLASS),
    XEN_CONSTANT(ev::kSchedVerbose, TRC_SCHED_VERBOSE),
    XEN_CONSTANT(ev::kDom0DomOps, TRC_DOM0_DOMOPS),
    XEN_CONSTANT(ev::kHvmEntryExit, TRC_HVM_ENTRYEXIT),
    XEN_CONSTANT(ev::kHvmHandler, TRC_HVM_HANDLER),
    XEN_CONSTANT(ev::kHvmEmul, TRC_HVM_EMUL),
    XEN_CONSTANT(ev::kPvEntry, TRC_PV_ENTRY),
    XEN_CONSTANT(ev::kPvSubcall, TRC_PV_SUBCALL),
    XEN_CONSTANT(ev::kHwPm, TRC_HW_PM),
    XEN_CONSTANT(ev::kHwIrq, TRC_HW_IRQ),
    XEN_CONSTANT(ev::kLostRecords, TRC_LOST_RECORDS),
    XEN_CONSTANT(ev::kWrapBuffer, TRC_TRACE_WRAP_BUFFER),
    XEN_CONSTANT(ev::kCpuChange, TRC_TRACE_CPU_CHANGE),
    XEN_CONSTANT(ev::kRunstateChange, TRC_SCHED_RUNSTATE_CHANGE),
    XEN_CONSTANT(ev::kContinueRunning, TRC_SCHED_CONTINUE_RUNNING),
    XEN_CONSTANT(ev::kDomAdd, TRC_SCHED_DOM_ADD),
    XEN_CONSTANT(ev::kDomRem, TRC_SCHED_DOM_REM),
    XEN_CONSTANT(ev::kSleep, TRC_SCHED_SLEEP),
    XEN_CONSTANT(ev::kWake, TRC_SCHED_WAKE),
    XEN_CONSTANT(ev::kYield, TRC_SCHED_YIELD),
    XEN_CONSTANT(ev::kBlock, TRC_SCHED_BLOCK),
    XEN_CONSTANT(ev::kShutdown, TRC_SCHED_SHUTDOWN),
    XEN_CONSTANT(ev::kSchedCtl, TRC_SCHED_CTL),
    XEN_CONSTANT(ev::kAdjDom, TRC_SCHED_ADJDOM),
    XEN_CONSTANT(ev::kSwitch, TRC_SCHED_SWITCH),
    XEN_CONSTANT(ev::kSTimerFn, TRC_SCHED_S_TIMER_FN),
    XEN_CONSTANT(ev::kTTimerFn, TRC_SCHED_T_TIMER_FN),
    XEN_CONSTANT(ev::kDomTimerFn, TRC_SCHED_DOM_TIMER_FN),
    XEN_CONSTANT(ev::kSwitchInfPrev, TRC_SCHED_SWITCH_INFPREV),
    XEN_CONSTANT(ev::kSwitchInfNext, TRC_SCHED_SWITCH_INFNEXT),
    XEN_CONSTANT(ev::kShutdownCode, TRC_SCHED_SHUTDOWN_CODE),
    XEN_CONSTANT(ev::kSwitchInfCont, TRC_SCHED_SWITCH_INFCONT),
    XEN_CONSTANT(ev::kSchedIdShift, TRC_SCHED_ID_SHIFT),
    XEN_CONSTANT(ev::kSchedIdMask, TRC_SCHED_ID_MASK),
    XEN_CONSTANT(ev::kSchedCredit, TRC_SCHED_CSCHED),
    XEN_CONSTANT(ev::kSchedCredit2, TRC_SCHED_CSCHED2),
    XEN_CONSTANT(ev::kSchedArinc653, TRC_SCHED_ARINC653),
    XEN_CONSTANT(ev::kSchedRtds, TRC_SCHED_RTDS),
    XEN_CONSTANT(ev::kSchedNull, TRC_SCHED_SNULL),
    XEN_CONSTANT(ev::kDom0DomAdd, TRC_DOM0_DOM_ADD),
    XEN_CONSTANT(ev::kDom0DomRem, TRC_DOM0_DOM_REM),
    XEN_CONSTANT(ev::kMemPageGrantMap, TRC_MEM_PAGE_GRANT_MAP),
    XEN_CONSTANT(ev::kMemPageGrantUnmap, TRC_MEM_PAGE_GRANT_UNMAP),
    XEN_CONSTANT(ev::kMemPageGrantTransfer, TRC_MEM_PAGE_GRANT_TRANSFER),
    XEN_CONSTANT(ev::kMemSetP2mEntry, TRC_MEM_SET_P2M_ENTRY),
    XEN_CONSTANT(ev::kMemDecreaseReservation, TRC_MEM_DECREASE_RESERVATION),
    XEN_CONSTANT(ev::kMemPodPopulate, TRC_MEM_POD_POPULATE),
    XEN_CONSTANT(ev::kMemPodZeroReclaim, TRC_MEM_POD_ZERO_RECLAIM),
    XEN_CONSTANT(ev::kMemPodSuperpageSplinter, TRC_MEM_POD_SUPERPAGE_SPLINTER),
    XEN_CONSTANT(ev::kPvHypercall, TRC_PV_HYPERCALL),
    XEN_CONSTANT(ev::kPvTrap, TRC_PV_TRAP),
    XEN_CONSTANT(ev::kPvPageFault, TRC_PV_PAGE_FAULT),
    XEN_CONSTANT(ev::kPvForcedInvalidOp, TRC_PV_FORCED_INVALID_OP),
    XEN_CONSTANT(ev::kPvEmulatePrivop, TRC_PV_EMULATE_PRIVOP),
    XEN_CONSTANT(ev::kPvEmulate4gb, TRC_PV_EMULATE_4GB),
    XEN_CONSTANT(ev::kPvMathStateRestore, TRC_PV_MATH_STATE_RESTORE),
    XEN_CONSTANT(ev::kPvPagingFixup, TRC_PV_PAGING_FIXUP),
    XEN_CONSTANT(ev::kPvGdtLdtMappingFault, TRC_PV_GDT_LDT_MAPPING_FAULT),
    XEN_CONSTANT(ev::kPvPtwrEmulation, TRC_PV_PTWR_EMULATION),
    XEN_CONSTANT(ev::kPvPtwrEmulationPae, TRC_PV_PTWR_EMULATION_PAE),
    XEN_CONSTANT(ev::kPvHypercallV2, TRC_PV_HYPERCALL_V2),
    XEN_CONSTANT(ev::kPvHypercallSubcall, TRC_PV_HYPERCALL_SUBCALL),
    XEN_CONSTANT(ev::k64BitFlag, TRC_64_FLAG),
    XEN_CONSTANT(ev::kHypercallArgMask, TRC_PV_HYPERCALL_V2_ARG_MASK),
    XEN_CONSTANT(ev::kHvmNestedFlag, TRC_HVM_NESTEDFLAG),
    XEN_CONSTANT(ev::kHvmVmentry, TRC_HVM_VMENTRY),
    XEN_CONSTANT(ev::kHvmVmexit, TRC_HVM_VMEXIT),
    XEN_CONSTANT(ev::kHvmVmexit64, TRC_HVM_VMEXIT64),
    XEN_CONSTANT(ev::kHvmPfXen, TRC_HVM_PF_XEN),
    XEN_CONSTANT(ev::kHvmPfXen64, TRC_HVM_PF_XEN64),
    XEN_CONSTANT(ev::kHvmPfInject, TRC_HVM_PF_INJECT),
    XEN_CONSTANT(ev::kHvmPfInject64, TRC_HVM_PF_INJECT64),
    XEN_CONSTANT(ev::kHvmInjExc, TRC_HVM_INJ_EXC),
    XEN_CONSTANT(ev::kHvmInjVirq, TRC_HVM_INJ_VIRQ),
    XEN_CONSTANT(ev::kHvmReinjVirq, TRC_HVM_REINJ_VIRQ),
    XEN_CONSTANT(ev::kHvmIoRead, TRC_HVM_IO_READ),
    XEN_CONSTANT(ev::kHvmIoWrite, TRC_HVM_IO_WRITE),
    XEN_CONSTANT(ev::kHvmCrRead, TRC_HVM_CR_READ),
    XEN_CONSTANT(ev::kHvmCrRead64, TRC_HVM_CR_READ64),
    XEN_CONSTANT(ev::kHvmCrWrite, TRC_HVM_CR_WRITE),
    XEN_CONSTANT(ev::kHvmCrWrite64, TRC_HVM_CR_WRITE64),
    XEN_CONSTANT(ev::kHvmDrRead, TRC_HVM_DR_READ),
    XEN_CONSTANT(ev::kHvmDrWrite, TRC_HVM_DR_WRITE),
    XEN_CONSTANT(ev::kHvmMsrRead, TRC_HVM_MSR_READ),
    XEN_CONSTANT(ev::kHvmMsrWrite, TRC_HVM_MSR_WRITE),
    XEN_CONSTANT(ev::kHvmCpuid, TRC_HVM_CPUID),
    XEN_CONSTANT(ev::kHvmIntr, TRC_HVM_INTR),
    XEN_CONSTANT(ev::kHvmNmi, TRC_HVM_NMI),
    XEN_CONSTANT(ev::kHvmSmi, TRC_HVM_SMI),
    XEN_CONSTANT(ev::kHvmVmmcall, TRC_HVM_VMMCALL),
    XEN_CONSTANT(ev::kHvmHlt, TRC_HVM_HLT),
    XEN_CONSTANT(ev::kHvmInvlpg, TRC_HVM_INVLPG),
    XEN_CONSTANT(ev::kHvmInvlpg64, TRC_HVM_INVLPG64),
    XEN_CONSTANT(ev::kHvmMce, TRC_HVM_MCE),
    XEN_CONSTANT(ev::kHvmIoportRead, TRC_HVM_IOPORT_READ),
    XEN_CONSTANT(ev::kHvmIomemRead, TRC_HVM_IOMEM_READ),
    XEN_CONSTANT(ev::kHvmClts, TRC_HVM_CLTS),
    XEN_CONSTANT(ev::kHvmLmsw, TRC_HVM_LMSW),
    XEN_CONSTANT(ev::kHvmLmsw64, TRC_HVM_LMSW64),
    XEN_CONSTANT(ev::kHvmRdtsc, TRC_HVM_RDTSC),
    XEN_CONSTANT(ev::kHvmIntrWindow, TRC_HVM_INTR_WINDOW),
    XEN_CONSTANT(ev::kHvmNpf, TRC_HVM_NPF),
    XEN_CONSTANT(ev::kHvmRealmodeEmulate, TRC_HVM_REALMODE_EMULATE),
    XEN_CONSTANT(ev::kHvmTrap, TRC_HVM_TRAP),
    XEN_CONSTANT(ev::kHvmTrapDebug, TRC_HVM_TRAP_DEBUG),
    XEN_CONSTANT(ev::kHvmVlapic, TRC_HVM_VLAPIC),
    XEN_CONSTANT(ev::kHvmXcrRead64, TRC_HVM_XCR_READ64),
    XEN_CONSTANT(ev::kHvmXcrWrite64, TRC_HVM_XCR_WRITE64),
    XEN_CONSTANT(ev::kHvmIoportWrite, TRC_HVM_IOPORT_WRITE),
    XEN_CONSTANT(ev::kHvmIomemWrite, TRC_HVM_IOMEM_WRITE),
    XEN_CONSTANT(ev::kPmFreqChange, TRC_PM_FREQ_CHANGE),
    XEN_CONSTANT(ev::kPmIdleEntry, TRC_PM_IDLE_ENTRY),
    XEN_CONSTANT(ev::kPmIdleExit, TRC_PM_IDLE_EXIT),
    XEN_CONSTANT(ev::kHwIrqMoveCleanupDelay, TRC_HW_IRQ_MOVE_CLEANUP_DELAY),
    XEN_CONSTANT(ev::kHwIrqMoveCleanup, TRC_HW_IRQ_MOVE_CLEANUP),
    XEN_CONSTANT(ev::kHwIrqBindVector, TRC_HW_IRQ_BIND_VECTOR),
    XEN_CONSTANT(ev::kHwIrqClearVector, TRC_HW_IRQ_CLEAR_VECTOR),
    XEN_CONSTANT(ev::kHwIrqMoveFinish, TRC_HW_IRQ_MOVE_FINISH),
    XEN_CONSTANT(ev::kHwIrqAssignVector, TRC_HW_IRQ_ASSIGN_VECTOR),
    XEN_CONSTANT(ev::kHwIrqUnmappedVector, TRC_HW_IRQ_UNMAPPED_VECTOR),
    XEN_CONSTANT(ev::kHwIrqHandled, TRC_HW_IRQ_HANDLED),
    XEN_CONSTANT(kMaxExtraWords, TRACE_EXTRA_MAX),
    XEN_CONSTANT(kHeaderExtraShift, TRACE_EXTRA_SHIFT),
    XEN_CONSTANT(kHeaderTscFlag, TRC_HD_CYCLE_FLAG),
    XEN_CONSTANT(kTbufHeaderBytes, sizeof(struct t_buf)),
    XEN_CONSTANT(kMaxRecordBytes, sizeof(struct t_rec)),
    XEN_CONSTANT(ev::kCpuChangeHeader, TRC_TRACE_CPU_CHANGE | (2u << TRACE_EXTRA_SHIFT)),
};

// Credit and credit2 events are defined in xen/common/sched/credit.c and credit2.c, not in the
// public header; their numbers were checked against those files (Xen 4.17 and master) and are
// built here with the public header's TRC_SCHED_CLASS_EVT.
constexpr ConstantPair kSchedulerSpecific[] = {
    XEN_CONSTANT(ev::kCschedSchedTasklet, TRC_SCHED_CLASS_EVT(CSCHED, 1)),
    XEN_CONSTANT(ev::kCschedAccountStart, TRC_SCHED_CLASS_EVT(CSCHED, 2)),
    XEN_CONSTANT(ev::kCschedAccountStop, TRC_SCHED_CLASS_EVT(CSCHED, 3)),
    XEN_CONSTANT(ev::kCschedStolenUnit, TRC_SCHED_CLASS_EVT(CSCHED, 4)),
    XEN_CONSTANT(ev::kCschedPickedCpu, TRC_SCHED_CLASS_EVT(CSCHED, 5)),
    XEN_CONSTANT(ev::kCschedTickle, TRC_SCHED_CLASS_EVT(CSCHED, 6)),
    XEN_CONSTANT(ev::kCschedBoostStart, TRC_SCHED_CLASS_EVT(CSCHED, 7)),
    XEN_CONSTANT(ev::kCschedBoostEnd, TRC_SCHED_CLASS_EVT(CSCHED, 8)),
    XEN_CONSTANT(ev::kCschedSchedule, TRC_SCHED_CLASS_EVT(CSCHED, 9)),
    XEN_CONSTANT(ev::kCschedRatelimit, TRC_SCHED_CLASS_EVT(CSCHED, 10)),
    XEN_CONSTANT(ev::kCschedStealCheck, TRC_SCHED_CLASS_EVT(CSCHED, 11)),
    XEN_CONSTANT(ev::kCsched2Tick, TRC_SCHED_CLASS_EVT(CSCHED2, 1)),
    XEN_CONSTANT(ev::kCsched2RunqPos, TRC_SCHED_CLASS_EVT(CSCHED2, 2)),
    XEN_CONSTANT(ev::kCsched2CreditBurn, TRC_SCHED_CLASS_EVT(CSCHED2, 3)),
    XEN_CONSTANT(ev::kCsched2CreditAdd, TRC_SCHED_CLASS_EVT(CSCHED2, 4)),
    XEN_CONSTANT(ev::kCsched2TickleCheck, TRC_SCHED_CLASS_EVT(CSCHED2, 5)),
    XEN_CONSTANT(ev::kCsched2Tickle, TRC_SCHED_CLASS_EVT(CSCHED2, 6)),
    XEN_CONSTANT(ev::kCsched2CreditReset, TRC_SCHED_CLASS_EVT(CSCHED2, 7)),
    XEN_CONSTANT(ev::kCsched2SchedTasklet, TRC_SCHED_CLASS_EVT(CSCHED2, 8)),
    XEN_CONSTANT(ev::kCsched2UpdateLoad, TRC_SCHED_CLASS_EVT(CSCHED2, 9)),
    XEN_CONSTANT(ev::kCsched2RunqAssign, TRC_SCHED_CLASS_EVT(CSCHED2, 10)),
    XEN_CONSTANT(ev::kCsched2UpdateUnitLoad, TRC_SCHED_CLASS_EVT(CSCHED2, 11)),
    XEN_CONSTANT(ev::kCsched2UpdateRunqLoad, TRC_SCHED_CLASS_EVT(CSCHED2, 12)),
    XEN_CONSTANT(ev::kCsched2TickleNew, TRC_SCHED_CLASS_EVT(CSCHED2, 13)),
    XEN_CONSTANT(ev::kCsched2RunqMaxWeight, TRC_SCHED_CLASS_EVT(CSCHED2, 14)),
    XEN_CONSTANT(ev::kCsched2Migrate, TRC_SCHED_CLASS_EVT(CSCHED2, 15)),
    XEN_CONSTANT(ev::kCsched2LoadCheck, TRC_SCHED_CLASS_EVT(CSCHED2, 16)),
    XEN_CONSTANT(ev::kCsched2LoadBalance, TRC_SCHED_CLASS_EVT(CSCHED2, 17)),
    XEN_CONSTANT(ev::kCsched2PickedCpu, TRC_SCHED_CLASS_EVT(CSCHED2, 19)),
    XEN_CONSTANT(ev::kCsched2RunqCandidate, TRC_SCHED_CLASS_EVT(CSCHED2, 20)),
    XEN_CONSTANT(ev::kCsched2Schedule, TRC_SCHED_CLASS_EVT(CSCHED2, 21)),
    XEN_CONSTANT(ev::kCsched2Ratelimit, TRC_SCHED_CLASS_EVT(CSCHED2, 22)),
    XEN_CONSTANT(ev::kCsched2RunqCandCheck, TRC_SCHED_CLASS_EVT(CSCHED2, 23)),
};

constexpr bool AllEqual(const ConstantPair* begin, const ConstantPair* end) {
  for (const ConstantPair* p = begin; p != end; ++p) {
    if (p->ours != p->xens) return false;
  }
  return true;
}
static_assert(AllEqual(std::begin(kPublic), std::end(kPublic)),
              "a constant in tracefmt differs from <xen/trace.h>; the test log names it");
static_assert(AllEqual(std::begin(kSchedulerSpecific), std::end(kSchedulerSpecific)),
              "a credit/credit2 event differs from TRC_SCHED_CLASS_EVT");

TEST(XenHeaderTest, PublicConstantsEqualXens) {
  for (const ConstantPair& p : kPublic) {
    EXPECT_EQ(p.ours, p.xens) << p.name;
  }
  EXPECT_GT(std::size(kPublic), 130u);
}

TEST(XenHeaderTest, SchedulerEventsFollowXensMacro) {
  for (const ConstantPair& p : kSchedulerSpecific) {
    EXPECT_EQ(p.ours, p.xens) << p.name;
  }
  for (uint32_t n = 0; n < 512; n += 37) {
    EXPECT_EQ(ev::SchedClassEvent(ev::kSchedCredit2, n), TRC_SCHED_CLASS_EVT(CSCHED2, n)) << n;
  }
}

// The one place a struct t_rec is touched: to confirm that the compiler lays Xen's bitfield
// header out as the decoder reads it (event in bits 0-27, count in 28-30, TSC flag in 31).
TEST(XenHeaderTest, BitfieldHeaderMatchesTheDecodersReading) {
  struct t_rec rec;
  std::memset(&rec, 0, sizeof rec);
  rec.event = ev::kSwitchInfNext;
  rec.extra_u32 = 4;
  rec.cycles_included = 1;
  rec.u.cycles.cycles_lo = 0x89abcdef;
  rec.u.cycles.cycles_hi = 0x01234567;
  rec.u.cycles.extra_u32[0] = 42;
  std::byte bytes[sizeof rec];
  std::memcpy(bytes, &rec, sizeof rec);
  Record decoded;
  ASSERT_EQ(DecodeRecord(std::span<const std::byte>(bytes, sizeof bytes), decoded), 4u + 8 + 16);
  EXPECT_EQ(decoded.event, ev::kSwitchInfNext);
  EXPECT_EQ(decoded.extra_words, 4);
  EXPECT_TRUE(decoded.has_tsc);
  EXPECT_EQ(decoded.tsc, 0x0123456789abcdefull);
  EXPECT_EQ(decoded.extra[0], 42u);
}

}  // namespace
}  // namespace tracefmt

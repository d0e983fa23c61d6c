// tracefmt/events.h — the event catalogue of Xen's public trace.h (Xen 4.17 and later).
//
// An event id is 28 bits: class in bits 16–27 (one bit per class, so masks can select several),
// subclass in bits 12–15, event number in bits 0–11. The constants below are the project's own
// spelling of Xen's; tests/unit/tracefmt/events_xen_header_test.cc checks every one against
// <xen/trace.h> from libxen-dev, so this header never needs to include Xen's.
//
// Typed views decode the records accounting needs without the caller counting words:
//
//   if (auto rc = tracefmt::AsRunstateChange(rec)) {
//     account(rc->domain, rc->vcpu, rc->old_state, rc->new_state, rec.tsc);
//   }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tracefmt/record.h"

namespace tracefmt::ev {

// --- Classes (bits 16–27 with subclass bits set: Xen's masks) -----------------------------------
inline constexpr uint32_t kClassShift = 16;
inline constexpr uint32_t kSubclassShift = 12;
inline constexpr uint32_t kGen = 0x0001f000;
inline constexpr uint32_t kSched = 0x0002f000;
inline constexpr uint32_t kDom0Op = 0x0004f000;
inline constexpr uint32_t kHvm = 0x0008f000;
inline constexpr uint32_t kMem = 0x0010f000;
inline constexpr uint32_t kPv = 0x0020f000;
inline constexpr uint32_t kShadow = 0x0040f000;
inline constexpr uint32_t kHw = 0x0080f000;
inline constexpr uint32_t kGuest = 0x0800f000;
inline constexpr uint32_t kAll = 0x0ffff000;

// --- Subclasses ----------------------------------------------------------------------------------
inline constexpr uint32_t kSchedMin = 0x00021000;      // runstate changes only
inline constexpr uint32_t kSchedClass = 0x00022000;    // scheduler-specific (credit, credit2, ...)
inline constexpr uint32_t kSchedVerbose = 0x00028000;  // switches, wakes, blocks, ...
inline constexpr uint32_t kDom0DomOps = 0x00041000;
inline constexpr uint32_t kHvmEntryExit = 0x00081000;
inline constexpr uint32_t kHvmHandler = 0x00082000;
inline constexpr uint32_t kHvmEmul = 0x00084000;
inline constexpr uint32_t kPvEntry = 0x00201000;
inline constexpr uint32_t kPvSubcall = 0x00202000;
inline constexpr uint32_t kHwPm = 0x00801000;
inline constexpr uint32_t kHwIrq = 0x00802000;

// --- GEN ---------------------------------------------------------------------------------------
inline constexpr uint32_t kLostRecords = kGen + 1;  // (count, dom | vcpu << 16, first_tsc lo, hi)
inline constexpr uint32_t kWrapBuffer = kGen + 2;   // padding to the end of the data area
inline constexpr uint32_t kCpuChange = kGen + 3;    // xentrace file framing: (cpu, chunk bytes)
inline constexpr uint32_t kCpuChangeHeader = 0x2001f003;  // kCpuChange, 2 extra words, no TSC

// --- SCHED
// ----------------------------------------------------------------------------------------
inline constexpr uint32_t kRunstateChange = kSchedMin + 1;   // old state bits 8–9, new bits 4–5
inline constexpr uint32_t kRunstateChangeMask = 0x0ffff00f;  // event id with the states cleared
inline constexpr uint32_t kContinueRunning = kSchedMin + 2;
inline constexpr uint32_t kDomAdd = kSchedVerbose + 1;
inline constexpr uint32_t kDomRem = kSchedVerbose + 2;
inline constexpr uint32_t kSleep = kSchedVerbose + 3;
inline constexpr uint32_t kWake = kSchedVerbose + 4;
inline constexpr uint32_t kYield = kSchedVerbose + 5;
inline constexpr uint32_t kBlock = kSchedVerbose + 6;
inline constexpr uint32_t kShutdown = kSchedVerbose + 7;
inline constexpr uint32_t kSchedCtl = kSchedVerbose + 8;
inline constexpr uint32_t kAdjDom = kSchedVerbose + 9;
inline constexpr uint32_t kSwitch = kSchedVerbose + 10;
inline constexpr uint32_t kSTimerFn = kSchedVerbose + 11;
inline constexpr uint32_t kTTimerFn = kSchedVerbose + 12;
inline constexpr uint32_t kDomTimerFn = kSchedVerbose + 13;
inline constexpr uint32_t kSwitchInfPrev = kSchedVerbose + 14;
inline constexpr uint32_t kSwitchInfNext = kSchedVerbose + 15;
inline constexpr uint32_t kShutdownCode = kSchedVerbose + 16;
inline constexpr uint32_t kSwitchInfCont = kSchedVerbose + 17;

// Scheduler-specific events: TRC_SCHED_CLASS_EVT(scheduler, n).
inline constexpr uint32_t kSchedIdShift = 9;
inline constexpr uint32_t kSchedIdMask = 0x7u << kSchedIdShift;
inline constexpr uint32_t kSchedCredit = 0;
inline constexpr uint32_t kSchedCredit2 = 1;
inline constexpr uint32_t kSchedArinc653 = 3;
inline constexpr uint32_t kSchedRtds = 4;
inline constexpr uint32_t kSchedNull = 5;
constexpr uint32_t SchedClassEvent(uint32_t scheduler, uint32_t n) {
  return (kSchedClass | ((scheduler << kSchedIdShift) & kSchedIdMask)) + (n & ~kSchedIdMask);
}

// Credit (xen/common/sched/credit.c) and credit2 (credit2.c) events.
inline constexpr uint32_t kCschedSchedTasklet = SchedClassEvent(kSchedCredit, 1);
inline constexpr uint32_t kCschedAccountStart = SchedClassEvent(kSchedCredit, 2);
inline constexpr uint32_t kCschedAccountStop = SchedClassEvent(kSchedCredit, 3);
inline constexpr uint32_t kCschedStolenVcpu = SchedClassEvent(kSchedCredit, 4);
inline constexpr uint32_t kCschedPickedCpu = SchedClassEvent(kSchedCredit, 5);
inline constexpr uint32_t kCschedTickle = SchedClassEvent(kSchedCredit, 6);
inline constexpr uint32_t kCschedBoostStart = SchedClassEvent(kSchedCredit, 7);
inline constexpr uint32_t kCschedBoostEnd = SchedClassEvent(kSchedCredit, 8);
inline constexpr uint32_t kCschedSchedule = SchedClassEvent(kSchedCredit, 9);
inline constexpr uint32_t kCschedRatelimit = SchedClassEvent(kSchedCredit, 10);
inline constexpr uint32_t kCschedStealCheck = SchedClassEvent(kSchedCredit, 11);
inline constexpr uint32_t kCschedStolenUnit = kCschedStolenVcpu;  // Xen 4.13+ spelling
inline constexpr uint32_t kCsched2Tick = SchedClassEvent(kSchedCredit2, 1);
inline constexpr uint32_t kCsched2RunqPos = SchedClassEvent(kSchedCredit2, 2);
inline constexpr uint32_t kCsched2CreditBurn = SchedClassEvent(kSchedCredit2, 3);
inline constexpr uint32_t kCsched2CreditAdd = SchedClassEvent(kSchedCredit2, 4);
inline constexpr uint32_t kCsched2TickleCheck = SchedClassEvent(kSchedCredit2, 5);
inline constexpr uint32_t kCsched2Tickle = SchedClassEvent(kSchedCredit2, 6);
inline constexpr uint32_t kCsched2CreditReset = SchedClassEvent(kSchedCredit2, 7);
inline constexpr uint32_t kCsched2SchedTasklet = SchedClassEvent(kSchedCredit2, 8);
inline constexpr uint32_t kCsched2UpdateLoad = SchedClassEvent(kSchedCredit2, 9);
inline constexpr uint32_t kCsched2RunqAssign = SchedClassEvent(kSchedCredit2, 10);
inline constexpr uint32_t kCsched2UpdateVcpuLoad = SchedClassEvent(kSchedCredit2, 11);
inline constexpr uint32_t kCsched2UpdateRunqLoad = SchedClassEvent(kSchedCredit2, 12);
inline constexpr uint32_t kCsched2TickleNew = SchedClassEvent(kSchedCredit2, 13);
inline constexpr uint32_t kCsched2RunqMaxWeight = SchedClassEvent(kSchedCredit2, 14);
inline constexpr uint32_t kCsched2Migrate = SchedClassEvent(kSchedCredit2, 15);
inline constexpr uint32_t kCsched2LoadCheck = SchedClassEvent(kSchedCredit2, 16);
inline constexpr uint32_t kCsched2LoadBalance = SchedClassEvent(kSchedCredit2, 17);
inline constexpr uint32_t kCsched2PickedCpu = SchedClassEvent(kSchedCredit2, 19);
inline constexpr uint32_t kCsched2RunqCandidate = SchedClassEvent(kSchedCredit2, 20);
inline constexpr uint32_t kCsched2Schedule = SchedClassEvent(kSchedCredit2, 21);
inline constexpr uint32_t kCsched2Ratelimit = SchedClassEvent(kSchedCredit2, 22);
inline constexpr uint32_t kCsched2RunqCandChk = SchedClassEvent(kSchedCredit2, 23);
// Xen 4.13+ spellings of the two above whose names changed when vCPUs became scheduling units.
inline constexpr uint32_t kCsched2UpdateUnitLoad = kCsched2UpdateVcpuLoad;
inline constexpr uint32_t kCsched2RunqCandCheck = kCsched2RunqCandChk;

// --- DOM0OP
// ----------------------------------------------------------------------------------------
inline constexpr uint32_t kDom0DomAdd = kDom0DomOps + 1;
inline constexpr uint32_t kDom0DomRem = kDom0DomOps + 2;

// --- MEM
// ------------------------------------------------------------------------------------------
inline constexpr uint32_t kMemPageGrantMap = kMem + 1;
inline constexpr uint32_t kMemPageGrantUnmap = kMem + 2;
inline constexpr uint32_t kMemPageGrantTransfer = kMem + 3;
inline constexpr uint32_t kMemSetP2mEntry = kMem + 4;
inline constexpr uint32_t kMemDecreaseReservation = kMem + 5;
inline constexpr uint32_t kMemPodPopulate = kMem + 16;
inline constexpr uint32_t kMemPodZeroReclaim = kMem + 17;
inline constexpr uint32_t kMemPodSuperpageSplinter = kMem + 18;

// --- PV ----------------------------------------------------------------------------------------
inline constexpr uint32_t kPvHypercall = kPvEntry + 1;
inline constexpr uint32_t kPvTrap = kPvEntry + 3;
inline constexpr uint32_t kPvPageFault = kPvEntry + 4;
inline constexpr uint32_t kPvForcedInvalidOp = kPvEntry + 5;
inline constexpr uint32_t kPvEmulatePrivop = kPvEntry + 6;
inline constexpr uint32_t kPvEmulate4gb = kPvEntry + 7;
inline constexpr uint32_t kPvMathStateRestore = kPvEntry + 8;
inline constexpr uint32_t kPvPagingFixup = kPvEntry + 9;
inline constexpr uint32_t kPvGdtLdtMappingFault = kPvEntry + 10;
inline constexpr uint32_t kPvPtwrEmulation = kPvEntry + 11;
inline constexpr uint32_t kPvPtwrEmulationPae = kPvEntry + 12;
inline constexpr uint32_t kPvHypercallV2 = kPvEntry + 13;
inline constexpr uint32_t kPvHypercallSubcall = kPvSubcall + 14;
inline constexpr uint32_t k64BitFlag = 0x100;  // TRC_64_FLAG: addresses are 64-bit
// PV_HYPERCALL_V2 word 0: hypercall number in bits 0–19; for argument i, bits 20+2i..21+2i say
// whether it was recorded as one 32-bit word (1) or two words, low first (2).
inline constexpr uint32_t kHypercallArgMask = 0xfff00000;

// --- HVM ----------------------------------------------------------------------------------------
inline constexpr uint32_t kHvmNestedFlag = 0x400;
inline constexpr uint32_t kHvmVmentry = kHvmEntryExit + 0x01;
inline constexpr uint32_t kHvmVmexit = kHvmEntryExit + 0x02;
inline constexpr uint32_t kHvmVmexit64 = kHvmEntryExit + k64BitFlag + 0x02;
inline constexpr uint32_t kHvmPfXen = kHvmHandler + 0x01;
inline constexpr uint32_t kHvmPfXen64 = kHvmHandler + k64BitFlag + 0x01;
inline constexpr uint32_t kHvmPfInject = kHvmHandler + 0x02;
inline constexpr uint32_t kHvmPfInject64 = kHvmHandler + k64BitFlag + 0x02;
inline constexpr uint32_t kHvmInjExc = kHvmHandler + 0x03;
inline constexpr uint32_t kHvmInjVirq = kHvmHandler + 0x04;
inline constexpr uint32_t kHvmReinjVirq = kHvmHandler + 0x05;
inline constexpr uint32_t kHvmIoRead = kHvmHandler + 0x06;
inline constexpr uint32_t kHvmIoWrite = kHvmHandler + 0x07;
inline constexpr uint32_t kHvmCrRead = kHvmHandler + 0x08;
inline constexpr uint32_t kHvmCrRead64 = kHvmHandler + k64BitFlag + 0x08;
inline constexpr uint32_t kHvmCrWrite = kHvmHandler + 0x09;
inline constexpr uint32_t kHvmCrWrite64 = kHvmHandler + k64BitFlag + 0x09;
inline constexpr uint32_t kHvmDrRead = kHvmHandler + 0x0a;
inline constexpr uint32_t kHvmDrWrite = kHvmHandler + 0x0b;
inline constexpr uint32_t kHvmMsrRead = kHvmHandler + 0x0c;
inline constexpr uint32_t kHvmMsrWrite = kHvmHandler + 0x0d;
inline constexpr uint32_t kHvmCpuid = kHvmHandler + 0x0e;
inline constexpr uint32_t kHvmIntr = kHvmHandler + 0x0f;
inline constexpr uint32_t kHvmNmi = kHvmHandler + 0x10;
inline constexpr uint32_t kHvmSmi = kHvmHandler + 0x11;
inline constexpr uint32_t kHvmVmmcall = kHvmHandler + 0x12;
inline constexpr uint32_t kHvmHlt = kHvmHandler + 0x13;
inline constexpr uint32_t kHvmInvlpg = kHvmHandler + 0x14;
inline constexpr uint32_t kHvmInvlpg64 = kHvmHandler + k64BitFlag + 0x14;
inline constexpr uint32_t kHvmMce = kHvmHandler + 0x15;
inline constexpr uint32_t kHvmIoportRead = kHvmHandler + 0x16;
inline constexpr uint32_t kHvmIomemRead = kHvmHandler + 0x17;
inline constexpr uint32_t kHvmClts = kHvmHandler + 0x18;
inline constexpr uint32_t kHvmLmsw = kHvmHandler + 0x19;
inline constexpr uint32_t kHvmLmsw64 = kHvmHandler + k64BitFlag + 0x19;
inline constexpr uint32_t kHvmRdtsc = kHvmHandler + 0x1a;
inline constexpr uint32_t kHvmIntrWindow = kHvmHandler + 0x20;
inline constexpr uint32_t kHvmNpf = kHvmHandler + 0x21;
inline constexpr uint32_t kHvmRealmodeEmulate = kHvmHandler + 0x22;
inline constexpr uint32_t kHvmTrap = kHvmHandler + 0x23;
inline constexpr uint32_t kHvmTrapDebug = kHvmHandler + 0x24;
inline constexpr uint32_t kHvmVlapic = kHvmHandler + 0x25;
inline constexpr uint32_t kHvmXcrRead64 = kHvmHandler + k64BitFlag + 0x26;
inline constexpr uint32_t kHvmXcrWrite64 = kHvmHandler + k64BitFlag + 0x27;
inline constexpr uint32_t kHvmIoportWrite = kHvmHandler + 0x216;
inline constexpr uint32_t kHvmIomemWrite = kHvmHandler + 0x217;

// --- HW ----------------------------------------------------------------------------------------
inline constexpr uint32_t kPmFreqChange = kHwPm + 0x01;
inline constexpr uint32_t kPmIdleEntry = kHwPm + 0x02;
inline constexpr uint32_t kPmIdleExit = kHwPm + 0x03;
inline constexpr uint32_t kHwIrqMoveCleanupDelay = kHwIrq + 0x1;
inline constexpr uint32_t kHwIrqMoveCleanup = kHwIrq + 0x2;
inline constexpr uint32_t kHwIrqBindVector = kHwIrq + 0x3;
inline constexpr uint32_t kHwIrqClearVector = kHwIrq + 0x4;
inline constexpr uint32_t kHwIrqMoveFinish = kHwIrq + 0x5;
inline constexpr uint32_t kHwIrqAssignVector = kHwIrq + 0x6;
inline constexpr uint32_t kHwIrqUnmappedVector = kHwIrq + 0x7;
inline constexpr uint32_t kHwIrqHandled = kHwIrq + 0x8;

// --- Domains
// ---------------------------------------------------------------------------------------
inline constexpr uint16_t kIdleDomain = 32767;   // DOMID_IDLE: one vCPU per physical CPU
inline constexpr uint16_t kMaxDomainId = 32767;  // ids above DOMID_FIRST_RESERVED are not guests
inline constexpr uint32_t kNoTimeLimit = 0xffffffff;  // SWITCH_INFNEXT next_time: no slice limit

}  // namespace tracefmt::ev

namespace tracefmt {

// Class of an event: its bits 16–27 (e.g. 0x0002 for SCHED); 0 for none.
constexpr uint32_t EventClassBits(uint32_t event) {
  return (event >> ev::kClassShift) & 0xfff;
}
// Subclass of an event: bits 12–15.
constexpr uint32_t EventSubclassBits(uint32_t event) {
  return (event >> ev::kSubclassShift) & 0xf;
}
// Whether Xen's event mask `mask` (as given to xc_tbuf_set_evt_mask) lets `event` through: the
// class bits and the subclass bits must both intersect (xen/common/trace.c, __trace_var).
constexpr bool EventMaskAdmits(uint32_t mask, uint32_t event) {
  return (mask & event) != 0 && (EventClassBits(mask) & EventClassBits(event)) != 0 &&
         (EventSubclassBits(mask) & EventSubclassBits(event)) != 0;
}

// Short class name ("GEN", "SCHED", "DOM0OP", "HVM", "MEM", "PV", "SHADOW", "HW", "GUEST"); an
// event whose class bits name no single class gives "unknown".
std::string_view EventClassName(uint32_t event);
// Xen's name for an event without the TRC_ prefix ("SCHED_SWITCH_INFPREV", "CSCHED2_TICK"), or
// an empty view when the catalogue does not know it. Runstate changes are named regardless of the
// states in their id.
std::string_view EventName(uint32_t event);
// EventName, or "0x%08x" for an unknown event.
std::string EventLabel(uint32_t event);
// Parses a class list ("sched,pv", "all") or a hex/decimal mask into an event mask.
std::optional<uint32_t> ParseEventMask(std::string_view text);

// --- Typed views
// -----------------------------------------------------------------------------------
enum class Runstate : uint8_t { kRunning = 0, kRunnable = 1, kBlocked = 2, kOffline = 3 };
std::string_view RunstateName(Runstate s);

struct RunstateChange {
  uint16_t domain;
  uint16_t vcpu;
  Runstate old_state;
  Runstate new_state;
};
struct SwitchInfPrev {  // the unit switched out: how long it ran (ns, 32-bit: wraps after 4.29 s)
  uint32_t domain;
  uint32_t unit;
  uint32_t runtime_ns;
};
struct SwitchInfNext {  // the unit switched in: how long it waited, its slice (kNoTimeLimit = none)
  uint32_t domain;
  uint32_t unit;
  uint32_t waited_ns;
  uint32_t next_time_ns;
};
struct Switch {
  uint32_t prev_domain;
  uint32_t prev_unit;
  uint32_t next_domain;
  uint32_t next_unit;
};
struct VcpuEvent {  // WAKE, SLEEP, BLOCK, YIELD: (domain, vcpu)
  uint32_t domain;
  uint32_t vcpu;
};
struct DomainEvent {  // DOM_ADD, DOM_REM
  uint32_t domain;
};
struct ContinueRunning {  // (vcpu | domain << 16)
  uint16_t domain;
  uint16_t vcpu;
};
struct LostRecords {
  uint32_t count;   // records dropped since the last LOST_RECORDS on this CPU
  uint16_t domain;  // who was running when space freed
  uint16_t vcpu;
  uint64_t first_tsc;  // TSC of the first drop
};
struct CpuChange {
  uint32_t cpu;
  uint32_t window_bytes;
};
struct PvHypercallV2 {
  uint32_t op;                     // hypercall number
  uint8_t nargs;                   // arguments recorded
  std::array<uint64_t, 6> args{};  // recorded argument values, in order
};

std::optional<RunstateChange> AsRunstateChange(const Record& rec);
std::optional<SwitchInfPrev> AsSwitchInfPrev(const Record& rec);
std::optional<SwitchInfNext> AsSwitchInfNext(const Record& rec);
std::optional<Switch> AsSwitch(const Record& rec);
// WAKE, SLEEP, BLOCK or YIELD.
std::optional<VcpuEvent> AsVcpuEvent(const Record& rec);
// DOM_ADD or DOM_REM (scheduler's or dom0op's).
std::optional<DomainEvent> AsDomainEvent(const Record& rec);
std::optional<ContinueRunning> AsContinueRunning(const Record& rec);
std::optional<LostRecords> AsLostRecords(const Record& rec);
std::optional<CpuChange> AsCpuChange(const Record& rec);
std::optional<PvHypercallV2> AsPvHypercallV2(const Record& rec);

constexpr bool IsRunstateChange(uint32_t event) {
  return (event & ev::kRunstateChangeMask) == ev::kRunstateChange;
}
// Records that stand for one hypercall: PV_HYPERCALL, PV_HYPERCALL_V2, PV_HYPERCALL_SUBCALL.
constexpr bool IsHypercallEvent(uint32_t event) {
  return event == ev::kPvHypercall || event == ev::kPvHypercallV2 ||
         event == ev::kPvHypercallSubcall;
}
// Whether a hypercall record's first data word names __HYPERVISOR_grant_table_op (20) or
// __HYPERVISOR_event_channel_op (32): the calls split-driver I/O is made of.
constexpr bool IsIoHypercallWord(uint32_t word0) {
  const uint32_t op = word0 & ~ev::kHypercallArgMask;
  return op == 20 || op == 32;
}
// Events that stand for guest I/O whatever their data: HVM port and MMIO emulation, grant
// map/unmap/transfer.
constexpr bool IsIoEventId(uint32_t event) {
  switch (event) {
    case ev::kHvmIoRead:
    case ev::kHvmIoWrite:
    case ev::kHvmIoportRead:
    case ev::kHvmIoportWrite:
    case ev::kHvmIomemRead:
    case ev::kHvmIomemWrite:
    case ev::kMemPageGrantMap:
    case ev::kMemPageGrantUnmap:
    case ev::kMemPageGrantTransfer:
      return true;
    default:
      return false;
  }
}
// Records that stand for guest I/O: IsIoEventId's events, and PV hypercalls on event channels
// and grant tables. Inline (and free of the record's copy) for the accounting hot path.
constexpr bool IsIoEvent(uint32_t event, uint32_t extra_words, uint32_t word0) {
  if (IsHypercallEvent(event)) return extra_words >= 1 && IsIoHypercallWord(word0);
  return IsIoEventId(event);
}
constexpr bool IsIoEvent(const Record& rec) {
  return IsIoEvent(rec.event, rec.extra_words, rec.extra[0]);
}

}  // namespace tracefmt

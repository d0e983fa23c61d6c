#include "tracefmt/events.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace tracefmt {

namespace {

struct NamedEvent {
  uint32_t event;
  std::string_view name;
};

// Xen's names, without the TRC_ prefix. Sorted at compile time for a binary search.
constexpr auto kEventNames = [] {
  std::array<NamedEvent, 144> table{{
      {ev::kLostRecords, "LOST_RECORDS"},
      {ev::kWrapBuffer, "TRACE_WRAP_BUFFER"},
      {ev::kCpuChange, "TRACE_CPU_CHANGE"},
      {ev::kRunstateChange, "SCHED_RUNSTATE_CHANGE"},
      {ev::kContinueRunning, "SCHED_CONTINUE_RUNNING"},
      {ev::kDomAdd, "SCHED_DOM_ADD"},
      {ev::kDomRem, "SCHED_DOM_REM"},
      {ev::kSleep, "SCHED_SLEEP"},
      {ev::kWake, "SCHED_WAKE"},
      {ev::kYield, "SCHED_YIELD"},
      {ev::kBlock, "SCHED_BLOCK"},
      {ev::kShutdown, "SCHED_SHUTDOWN"},
      {ev::kSchedCtl, "SCHED_CTL"},
      {ev::kAdjDom, "SCHED_ADJDOM"},
      {ev::kSwitch, "SCHED_SWITCH"},
      {ev::kSTimerFn, "SCHED_S_TIMER_FN"},
      {ev::kTTimerFn, "SCHED_T_TIMER_FN"},
      {ev::kDomTimerFn, "SCHED_DOM_TIMER_FN"},
      {ev::kSwitchInfPrev, "SCHED_SWITCH_INFPREV"},
      {ev::kSwitchInfNext, "SCHED_SWITCH_INFNEXT"},
      {ev::kShutdownCode, "SCHED_SHUTDOWN_CODE"},
      {ev::kSwitchInfCont, "SCHED_SWITCH_INFCONT"},
      {ev::kCschedSchedTasklet, "CSCHED_SCHED_TASKLET"},
      {ev::kCschedAccountStart, "CSCHED_ACCOUNT_START"},
      {ev::kCschedAccountStop, "CSCHED_ACCOUNT_STOP"},
      {ev::kCschedStolenVcpu, "CSCHED_STOLEN_UNIT"},
      {ev::kCschedPickedCpu, "CSCHED_PICKED_CPU"},
      {ev::kCschedTickle, "CSCHED_TICKLE"},
      {ev::kCschedBoostStart, "CSCHED_BOOST_START"},
      {ev::kCschedBoostEnd, "CSCHED_BOOST_END"},
      {ev::kCschedSchedule, "CSCHED_SCHEDULE"},
      {ev::kCschedRatelimit, "CSCHED_RATELIMIT"},
      {ev::kCschedStealCheck, "CSCHED_STEAL_CHECK"},
      {ev::kCsched2Tick, "CSCHED2_TICK"},
      {ev::kCsched2RunqPos, "CSCHED2_RUNQ_POS"},
      {ev::kCsched2CreditBurn, "CSCHED2_CREDIT_BURN"},
      {ev::kCsched2CreditAdd, "CSCHED2_CREDIT_ADD"},
      {ev::kCsched2TickleCheck, "CSCHED2_TICKLE_CHECK"},
      {ev::kCsched2Tickle, "CSCHED2_TICKLE"},
      {ev::kCsched2CreditReset, "CSCHED2_CREDIT_RESET"},
      {ev::kCsched2SchedTasklet, "CSCHED2_SCHED_TASKLET"},
      {ev::kCsched2UpdateLoad, "CSCHED2_UPDATE_LOAD"},
      {ev::kCsched2RunqAssign, "CSCHED2_RUNQ_ASSIGN"},
      {ev::kCsched2UpdateVcpuLoad, "CSCHED2_UPDATE_UNIT_LOAD"},
      {ev::kCsched2UpdateRunqLoad, "CSCHED2_UPDATE_RUNQ_LOAD"},
      {ev::kCsched2TickleNew, "CSCHED2_TICKLE_NEW"},
      {ev::kCsched2RunqMaxWeight, "CSCHED2_RUNQ_MAX_WEIGHT"},
      {ev::kCsched2Migrate, "CSCHED2_MIGRATE"},
      {ev::kCsched2LoadCheck, "CSCHED2_LOAD_CHECK"},
      {ev::kCsched2LoadBalance, "CSCHED2_LOAD_BALANCE"},
      {ev::kCsched2PickedCpu, "CSCHED2_PICKED_CPU"},
      {ev::kCsched2RunqCandidate, "CSCHED2_RUNQ_CANDIDATE"},
      {ev::kCsched2Schedule, "CSCHED2_SCHEDULE"},
      {ev::kCsched2Ratelimit, "CSCHED2_RATELIMIT"},
      {ev::kCsched2RunqCandChk, "CSCHED2_RUNQ_CAND_CHECK"},
      {ev::kDom0DomAdd, "DOM0_DOM_ADD"},
      {ev::kDom0DomRem, "DOM0_DOM_REM"},
      {ev::kMemPageGrantMap, "MEM_PAGE_GRANT_MAP"},
      {ev::kMemPageGrantUnmap, "MEM_PAGE_GRANT_UNMAP"},
      {ev::kMemPageGrantTransfer, "MEM_PAGE_GRANT_TRANSFER"},
      {ev::kMemSetP2mEntry, "MEM_SET_P2M_ENTRY"},
      {ev::kMemDecreaseReservation, "MEM_DECREASE_RESERVATION"},
      {ev::kMemPodPopulate, "MEM_POD_POPULATE"},
      {ev::kMemPodZeroReclaim, "MEM_POD_ZERO_RECLAIM"},
      {ev::kMemPodSuperpageSplinter, "MEM_POD_SUPERPAGE_SPLINTER"},
      {ev::kPvHypercall, "PV_HYPERCALL"},
      {ev::kPvTrap, "PV_TRAP"},
      {ev::kPvPageFault, "PV_PAGE_FAULT"},
      {ev::kPvForcedInvalidOp, "PV_FORCED_INVALID_OP"},
      {ev::kPvEmulatePrivop, "PV_EMULATE_PRIVOP"},
      {ev::kPvEmulate4gb, "PV_EMULATE_4GB"},
      {ev::kPvMathStateRestore, "PV_MATH_STATE_RESTORE"},
      {ev::kPvPagingFixup, "PV_PAGING_FIXUP"},
      {ev::kPvGdtLdtMappingFault, "PV_GDT_LDT_MAPPING_FAULT"},
      {ev::kPvPtwrEmulation, "PV_PTWR_EMULATION"},
      {ev::kPvPtwrEmulationPae, "PV_PTWR_EMULATION_PAE"},
      {ev::kPvHypercallV2, "PV_HYPERCALL_V2"},
      {ev::kPvHypercallSubcall, "PV_HYPERCALL_SUBCALL"},
      // PV events that carry 64-bit addresses set TRC_64_FLAG (xen/arch/x86/pv/trace.c).
      {ev::kPvTrap | ev::k64BitFlag, "PV_TRAP64"},
      {ev::kPvPageFault | ev::k64BitFlag, "PV_PAGE_FAULT64"},
      {ev::kPvForcedInvalidOp | ev::k64BitFlag, "PV_FORCED_INVALID_OP64"},
      {ev::kPvEmulatePrivop | ev::k64BitFlag, "PV_EMULATE_PRIVOP64"},
      {ev::kPvEmulate4gb | ev::k64BitFlag, "PV_EMULATE_4GB64"},
      {ev::kPvMathStateRestore | ev::k64BitFlag, "PV_MATH_STATE_RESTORE64"},
      {ev::kPvPagingFixup | ev::k64BitFlag, "PV_PAGING_FIXUP64"},
      {ev::kPvGdtLdtMappingFault | ev::k64BitFlag, "PV_GDT_LDT_MAPPING_FAULT64"},
      {ev::kPvPtwrEmulation | ev::k64BitFlag, "PV_PTWR_EMULATION64"},
      {ev::kPvPtwrEmulationPae | ev::k64BitFlag, "PV_PTWR_EMULATION_PAE64"},
      {ev::kHvmVmentry, "HVM_VMENTRY"},
      {ev::kHvmVmexit, "HVM_VMEXIT"},
      {ev::kHvmVmexit64, "HVM_VMEXIT64"},
      {ev::kHvmPfXen, "HVM_PF_XEN"},
      {ev::kHvmPfXen64, "HVM_PF_XEN64"},
      {ev::kHvmPfInject, "HVM_PF_INJECT"},
      {ev::kHvmPfInject64, "HVM_PF_INJECT64"},
      {ev::kHvmInjExc, "HVM_INJ_EXC"},
      {ev::kHvmInjVirq, "HVM_INJ_VIRQ"},
      {ev::kHvmReinjVirq, "HVM_REINJ_VIRQ"},
      {ev::kHvmIoRead, "HVM_IO_READ"},
      {ev::kHvmIoWrite, "HVM_IO_WRITE"},
      {ev::kHvmCrRead, "HVM_CR_READ"},
      {ev::kHvmCrRead64, "HVM_CR_READ64"},
      {ev::kHvmCrWrite, "HVM_CR_WRITE"},
      {ev::kHvmCrWrite64, "HVM_CR_WRITE64"},
      {ev::kHvmDrRead, "HVM_DR_READ"},
      {ev::kHvmDrWrite, "HVM_DR_WRITE"},
      {ev::kHvmMsrRead, "HVM_MSR_READ"},
      {ev::kHvmMsrWrite, "HVM_MSR_WRITE"},
      {ev::kHvmCpuid, "HVM_CPUID"},
      {ev::kHvmIntr, "HVM_INTR"},
      {ev::kHvmNmi, "HVM_NMI"},
      {ev::kHvmSmi, "HVM_SMI"},
      {ev::kHvmVmmcall, "HVM_VMMCALL"},
      {ev::kHvmHlt, "HVM_HLT"},
      {ev::kHvmInvlpg, "HVM_INVLPG"},
      {ev::kHvmInvlpg64, "HVM_INVLPG64"},
      {ev::kHvmMce, "HVM_MCE"},
      {ev::kHvmIoportRead, "HVM_IOPORT_READ"},
      {ev::kHvmIomemRead, "HVM_IOMEM_READ"},
      {ev::kHvmClts, "HVM_CLTS"},
      {ev::kHvmLmsw, "HVM_LMSW"},
      {ev::kHvmLmsw64, "HVM_LMSW64"},
      {ev::kHvmRdtsc, "HVM_RDTSC"},
      {ev::kHvmIntrWindow, "HVM_INTR_WINDOW"},
      {ev::kHvmNpf, "HVM_NPF"},
      {ev::kHvmRealmodeEmulate, "HVM_REALMODE_EMULATE"},
      {ev::kHvmTrap, "HVM_TRAP"},
      {ev::kHvmTrapDebug, "HVM_TRAP_DEBUG"},
      {ev::kHvmVlapic, "HVM_VLAPIC"},
      {ev::kHvmXcrRead64, "HVM_XCR_READ64"},
      {ev::kHvmXcrWrite64, "HVM_XCR_WRITE64"},
      {ev::kHvmIoportWrite, "HVM_IOPORT_WRITE"},
      {ev::kHvmIomemWrite, "HVM_IOMEM_WRITE"},
      {ev::kPmFreqChange, "PM_FREQ_CHANGE"},
      {ev::kPmIdleEntry, "PM_IDLE_ENTRY"},
      {ev::kPmIdleExit, "PM_IDLE_EXIT"},
      {ev::kHwIrqMoveCleanupDelay, "HW_IRQ_MOVE_CLEANUP_DELAY"},
      {ev::kHwIrqMoveCleanup, "HW_IRQ_MOVE_CLEANUP"},
      {ev::kHwIrqBindVector, "HW_IRQ_BIND_VECTOR"},
      {ev::kHwIrqClearVector, "HW_IRQ_CLEAR_VECTOR"},
      {ev::kHwIrqMoveFinish, "HW_IRQ_MOVE_FINISH"},
      {ev::kHwIrqAssignVector, "HW_IRQ_ASSIGN_VECTOR"},
      {ev::kHwIrqUnmappedVector, "HW_IRQ_UNMAPPED_VECTOR"},
      {ev::kHwIrqHandled, "HW_IRQ_HANDLED"},
  }};
  std::sort(table.begin(), table.end(),
            [](const NamedEvent& a, const NamedEvent& b) { return a.event < b.event; });
  return table;
}();

struct NamedClass {
  uint32_t mask;
  std::string_view name;
};
constexpr std::array<NamedClass, 9> kClasses{{
    {ev::kGen, "GEN"},
    {ev::kSched, "SCHED"},
    {ev::kDom0Op, "DOM0OP"},
    {ev::kHvm, "HVM"},
    {ev::kMem, "MEM"},
    {ev::kPv, "PV"},
    {ev::kShadow, "SHADOW"},
    {ev::kHw, "HW"},
    {ev::kGuest, "GUEST"},
}};

}  // namespace

std::string_view EventClassName(uint32_t event) {
  const uint32_t bits = EventClassBits(event);
  for (const NamedClass& c : kClasses) {
    if (EventClassBits(c.mask) == bits) return c.name;
  }
  return "unknown";
}

std::string_view EventName(uint32_t event) {
  if (IsRunstateChange(event)) return "SCHED_RUNSTATE_CHANGE";
  auto it = std::lower_bound(kEventNames.begin(), kEventNames.end(), event,
                             [](const NamedEvent& e, uint32_t id) { return e.event < id; });
  if (it != kEventNames.end() && it->event == event) return it->name;
  return {};
}

std::string EventLabel(uint32_t event) {
  const std::string_view name = EventName(event);
  if (!name.empty()) return std::string(name);
  return fmt::format("{:#010x}", event);
}

std::optional<uint32_t> ParseEventMask(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint32_t value = 0;
  const bool hex = text.starts_with("0x") || text.starts_with("0X");
  const std::string_view digits = hex ? text.substr(2) : text;
  if (!digits.empty()) {
    auto [ptr, ec] =
        std::from_chars(digits.data(), digits.data() + digits.size(), value, hex ? 16 : 10);
    if (ec == std::errc() && ptr == digits.data() + digits.size()) return value;
    if (hex) return std::nullopt;
  }
  // A comma-separated list of class names, case-insensitive.
  uint32_t mask = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string word(text.substr(start, end - start));
    for (char& ch : word) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (word == "ALL") {
      mask |= ev::kAll;
    } else {
      auto it = std::find_if(kClasses.begin(), kClasses.end(),
                             [&](const NamedClass& c) { return c.name == word; });
      if (it == kClasses.end()) return std::nullopt;
      mask |= it->mask;
    }
    start = end + 1;
  }
  return mask;
}

std::string_view RunstateName(Runstate s) {
  switch (s) {
    case Runstate::kRunning:
      return "running";
    case Runstate::kRunnable:
      return "runnable";
    case Runstate::kBlocked:
      return "blocked";
    case Runstate::kOffline:
      return "offline";
  }
  return "unknown";
}

// --- Typed views ---------------------------------------------------------------------------------
// Each view checks the event and that the record carries at least the words it reads: a short
// record (a corrupt one, or one from a Xen with another layout) gives nullopt, never garbage.

std::optional<RunstateChange> AsRunstateChange(const Record& rec) {
  if (!IsRunstateChange(rec.event) || rec.extra_words < 1) return std::nullopt;
  return RunstateChange{
      static_cast<uint16_t>(rec.extra[0] >> 16), static_cast<uint16_t>(rec.extra[0] & 0xffff),
      static_cast<Runstate>((rec.event >> 8) & 3), static_cast<Runstate>((rec.event >> 4) & 3)};
}

std::optional<SwitchInfPrev> AsSwitchInfPrev(const Record& rec) {
  if (rec.event != ev::kSwitchInfPrev || rec.extra_words < 3) return std::nullopt;
  return SwitchInfPrev{rec.extra[0], rec.extra[1], rec.extra[2]};
}

std::optional<SwitchInfNext> AsSwitchInfNext(const Record& rec) {
  if (rec.event != ev::kSwitchInfNext || rec.extra_words < 4) return std::nullopt;
  return SwitchInfNext{rec.extra[0], rec.extra[1], rec.extra[2], rec.extra[3]};
}

std::optional<Switch> AsSwitch(const Record& rec) {
  if (rec.event != ev::kSwitch || rec.extra_words < 4) return std::nullopt;
  return Switch{rec.extra[0], rec.extra[1], rec.extra[2], rec.extra[3]};
}

std::optional<VcpuEvent> AsVcpuEvent(const Record& rec) {
  const bool vcpu_event = rec.event == ev::kWake || rec.event == ev::kSleep ||
                          rec.event == ev::kBlock || rec.event == ev::kYield;
  if (!vcpu_event || rec.extra_words < 2) return std::nullopt;
  return VcpuEvent{rec.extra[0], rec.extra[1]};
}

std::optional<DomainEvent> AsDomainEvent(const Record& rec) {
  const bool dom_event = rec.event == ev::kDomAdd || rec.event == ev::kDomRem ||
                         rec.event == ev::kDom0DomAdd || rec.event == ev::kDom0DomRem;
  if (!dom_event || rec.extra_words < 1) return std::nullopt;
  return DomainEvent{rec.extra[0]};
}

std::optional<ContinueRunning> AsContinueRunning(const Record& rec) {
  if (rec.event != ev::kContinueRunning || rec.extra_words < 1) return std::nullopt;
  return ContinueRunning{static_cast<uint16_t>(rec.extra[0] >> 16),
                         static_cast<uint16_t>(rec.extra[0] & 0xffff)};
}

std::optional<LostRecords> AsLostRecords(const Record& rec) {
  if (rec.event != ev::kLostRecords || rec.extra_words < 4) return std::nullopt;
  return LostRecords{rec.extra[0], static_cast<uint16_t>(rec.extra[1] & 0xffff),
                     static_cast<uint16_t>(rec.extra[1] >> 16),
                     uint64_t{rec.extra[2]} | (uint64_t{rec.extra[3]} << 32)};
}

std::optional<CpuChange> AsCpuChange(const Record& rec) {
  if (rec.event != ev::kCpuChange || rec.extra_words < 2) return std::nullopt;
  return CpuChange{rec.extra[0], rec.extra[1]};
}

std::optional<PvHypercallV2> AsPvHypercallV2(const Record& rec) {
  if (rec.event != ev::kPvHypercallV2 || rec.extra_words < 1) return std::nullopt;
  PvHypercallV2 call;
  call.op = rec.extra[0] & ~ev::kHypercallArgMask;
  call.nargs = 0;
  uint32_t word = 1;
  for (uint32_t i = 0; i < 6; ++i) {
    const uint32_t kind = (rec.extra[0] >> (20 + 2 * i)) & 3;
    if (kind == 0) continue;
    const uint32_t words = kind == 2 ? 2 : 1;  // 3 is not defined; read it as one word
    if (word + words > rec.extra_words) return std::nullopt;
    uint64_t value = rec.extra[word];
    if (words == 2) value |= uint64_t{rec.extra[word + 1]} << 32;
    call.args[call.nargs++] = value;
    word += words;
  }
  return call;
}

}  // namespace tracefmt

#include "tracefmt/events.h"

#include <gtest/gtest.h>

#include "tracefmt/testing/trace_builder.h"

namespace tracefmt {
namespace {

using testing::Rec;

TEST(EventNameTest, NamesXensEventsWithoutPrefix) {
  EXPECT_EQ(EventName(ev::kSwitchInfPrev), "SCHED_SWITCH_INFPREV");
  EXPECT_EQ(EventName(ev::kLostRecords), "LOST_RECORDS");
  EXPECT_EQ(EventName(ev::kCsched2Tick), "CSCHED2_TICK");
  EXPECT_EQ(EventName(ev::kCsched2RunqCandCheck), "CSCHED2_RUNQ_CAND_CHECK");
  EXPECT_EQ(EventName(ev::kPvHypercallV2), "PV_HYPERCALL_V2");
  EXPECT_EQ(EventName(ev::kHvmIoportWrite), "HVM_IOPORT_WRITE");
  EXPECT_EQ(EventName(ev::kHwIrqHandled), "HW_IRQ_HANDLED");
  EXPECT_EQ(EventName(ev::kPvPtwrEmulation | ev::k64BitFlag), "PV_PTWR_EMULATION64");
  EXPECT_EQ(EventName(0x0002f0ff), "");
}

TEST(EventNameTest, RunstateChangesAreNamedWhateverTheirStates) {
  for (uint32_t old_state = 0; old_state < 4; ++old_state) {
    for (uint32_t new_state = 0; new_state < 4; ++new_state) {
      const uint32_t event = ev::kRunstateChange | old_state << 8 | new_state << 4;
      EXPECT_TRUE(IsRunstateChange(event));
      EXPECT_EQ(EventName(event), "SCHED_RUNSTATE_CHANGE");
    }
  }
  EXPECT_FALSE(IsRunstateChange(ev::kContinueRunning));
}

TEST(EventNameTest, LabelFallsBackToHex) {
  EXPECT_EQ(EventLabel(ev::kWake), "SCHED_WAKE");
  EXPECT_EQ(EventLabel(0x0badf00d), "0x0badf00d");
}

TEST(EventClassTest, ClassAndSubclass) {
  EXPECT_EQ(EventClassName(ev::kWake), "SCHED");
  EXPECT_EQ(EventClassName(ev::kCpuChange), "GEN");
  EXPECT_EQ(EventClassName(ev::kPvHypercallV2), "PV");
  EXPECT_EQ(EventClassName(ev::kHwIrqHandled), "HW");
  EXPECT_EQ(EventClassName(0x00030001), "unknown") << "two class bits name no single class";
  EXPECT_EQ(EventClassBits(ev::kSched), 0x002u);
  EXPECT_EQ(EventSubclassBits(ev::kSchedVerbose), 0x8u);
}

TEST(EventMaskTest, ClassAndSubclassMustBothMatch) {
  EXPECT_TRUE(EventMaskAdmits(ev::kAll, ev::kWake));
  EXPECT_TRUE(EventMaskAdmits(ev::kSched, ev::kSwitchInfPrev));
  EXPECT_TRUE(EventMaskAdmits(ev::kSchedMin, ev::kRunstateChange));
  EXPECT_FALSE(EventMaskAdmits(ev::kSchedMin, ev::kSwitchInfPrev)) << "subclass differs";
  EXPECT_FALSE(EventMaskAdmits(ev::kPv, ev::kWake)) << "class differs";
  EXPECT_FALSE(EventMaskAdmits(0, ev::kWake));
}

TEST(EventMaskTest, ParsesClassListsAndNumbers) {
  EXPECT_EQ(ParseEventMask("all"), ev::kAll);
  EXPECT_EQ(ParseEventMask("sched"), ev::kSched);
  EXPECT_EQ(ParseEventMask("SCHED,pv"), ev::kSched | ev::kPv);
  EXPECT_EQ(ParseEventMask("0x0002f000"), 0x0002f000u);
  EXPECT_EQ(ParseEventMask("192512"), 0x0002f000u);
  EXPECT_EQ(ParseEventMask(""), std::nullopt);
  EXPECT_EQ(ParseEventMask("0x"), std::nullopt);
  EXPECT_EQ(ParseEventMask("0xfoo"), std::nullopt);
  EXPECT_EQ(ParseEventMask("sched,bogus"), std::nullopt);
  EXPECT_EQ(ParseEventMask("sched,"), std::nullopt);
}

TEST(TypedViewTest, RunstateChangeTakesStatesFromTheEventId) {
  const uint32_t event = ev::kRunstateChange | 0u << 8 | 2u << 4;  // running -> blocked
  auto rc = AsRunstateChange(Rec(event, 1, {3 | 7u << 16}));
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->domain, 7u);
  EXPECT_EQ(rc->vcpu, 3u);
  EXPECT_EQ(rc->old_state, Runstate::kRunning);
  EXPECT_EQ(rc->new_state, Runstate::kBlocked);
  EXPECT_EQ(RunstateName(rc->new_state), "blocked");
}

TEST(TypedViewTest, SchedulingLayouts) {
  auto prev = AsSwitchInfPrev(Rec(ev::kSwitchInfPrev, 1, {1, 0, 5000}));
  ASSERT_TRUE(prev);
  EXPECT_EQ(prev->runtime_ns, 5000u);
  auto next = AsSwitchInfNext(Rec(ev::kSwitchInfNext, 1, {2, 1, 300, ev::kNoTimeLimit}));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->domain, 2u);
  EXPECT_EQ(next->waited_ns, 300u);
  EXPECT_EQ(next->next_time_ns, ev::kNoTimeLimit);
  auto sw = AsSwitch(Rec(ev::kSwitch, 1, {0, 1, 32767, 0}));
  ASSERT_TRUE(sw);
  EXPECT_EQ(sw->next_domain, 32767u);
  for (uint32_t e : {ev::kWake, ev::kSleep, ev::kBlock, ev::kYield}) {
    auto v = AsVcpuEvent(Rec(e, 1, {4, 2}));
    ASSERT_TRUE(v) << EventName(e);
    EXPECT_EQ(v->domain, 4u);
    EXPECT_EQ(v->vcpu, 2u);
  }
  for (uint32_t e : {ev::kDomAdd, ev::kDomRem, ev::kDom0DomAdd, ev::kDom0DomRem}) {
    auto d = AsDomainEvent(Rec(e, 1, {9}));
    ASSERT_TRUE(d) << EventName(e);
    EXPECT_EQ(d->domain, 9u);
  }
  auto cont = AsContinueRunning(Rec(ev::kContinueRunning, 1, {1 | 5u << 16}));
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->domain, 5u);
  EXPECT_EQ(cont->vcpu, 1u);
}

TEST(TypedViewTest, GeneralLayouts) {
  auto lost = AsLostRecords(Rec(ev::kLostRecords, 9, {1234, 2 | 1u << 16, 0x89abcdef, 0x1}));
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->count, 1234u);
  EXPECT_EQ(lost->domain, 2u);
  EXPECT_EQ(lost->vcpu, 1u);
  EXPECT_EQ(lost->first_tsc, 0x189abcdefull);
  auto cc = AsCpuChange(testing::RecNoTsc(ev::kCpuChange, {1, 4096}));
  ASSERT_TRUE(cc);
  EXPECT_EQ(cc->window_bytes, 4096u);
}

TEST(TypedViewTest, WrongEventOrShortRecordGivesNothing) {
  EXPECT_FALSE(AsSwitchInfPrev(Rec(ev::kSwitchInfNext, 1, {1, 2, 3, 4})));
  EXPECT_FALSE(AsSwitchInfPrev(Rec(ev::kSwitchInfPrev, 1, {1, 2})));
  EXPECT_FALSE(AsSwitchInfNext(Rec(ev::kSwitchInfNext, 1, {1, 2, 3})));
  EXPECT_FALSE(AsSwitch(Rec(ev::kSwitch, 1, {1, 2, 3})));
  EXPECT_FALSE(AsRunstateChange(Rec(ev::kRunstateChange, 1)));
  EXPECT_FALSE(AsVcpuEvent(Rec(ev::kWake, 1, {1})));
  EXPECT_FALSE(AsVcpuEvent(Rec(ev::kSwitch, 1, {1, 2})));
  EXPECT_FALSE(AsDomainEvent(Rec(ev::kDomAdd, 1)));
  EXPECT_FALSE(AsContinueRunning(Rec(ev::kContinueRunning, 1)));
  EXPECT_FALSE(AsLostRecords(Rec(ev::kLostRecords, 1, {1, 2, 3})));
  EXPECT_FALSE(AsCpuChange(Rec(ev::kCpuChange, 1, {1})));
  EXPECT_FALSE(AsPvHypercallV2(Rec(ev::kPvHypercallV2, 1)));
}

TEST(PvHypercallV2Test, ArgumentBitsSayHowEachArgumentWasRecorded) {
  // op 26 (mmuext_op); arg 0 as 32 bits, arg 1 not recorded, arg 2 as 64 bits, arg 3 as 32.
  const uint32_t word0 = 26 | 1u << 20 | 2u << 24 | 1u << 26;
  auto call = AsPvHypercallV2(Rec(ev::kPvHypercallV2, 1, {word0, 0x11, 0x22, 0x33, 0x44}));
  ASSERT_TRUE(call);
  EXPECT_EQ(call->op, 26u);
  ASSERT_EQ(call->nargs, 3);
  EXPECT_EQ(call->args[0], 0x11u);
  EXPECT_EQ(call->args[1], 0x0000003300000022ull) << "64-bit argument: low word first";
  EXPECT_EQ(call->args[2], 0x44u);
}

TEST(PvHypercallV2Test, ArgumentsMissingFromTheRecordGiveNothing) {
  const uint32_t word0 = 3 | 2u << 20;  // one 64-bit argument, but only one word present
  EXPECT_FALSE(AsPvHypercallV2(Rec(ev::kPvHypercallV2, 1, {word0, 0x11})));
  auto bare = AsPvHypercallV2(Rec(ev::kPvHypercallV2, 1, {3}));
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->nargs, 0);
}

TEST(IoEventTest, GrantAndEventChannelHypercallsAndHvmIo) {
  EXPECT_TRUE(IsIoEvent(Rec(ev::kHvmIoportRead, 1, {0x60})));
  EXPECT_TRUE(IsIoEvent(Rec(ev::kMemPageGrantMap, 1, {1})));
  EXPECT_TRUE(IsIoEvent(Rec(ev::kPvHypercallV2, 1, {20 | 1u << 20, 0})));
  EXPECT_TRUE(IsIoEvent(Rec(ev::kPvHypercallV2, 1, {32})));
  EXPECT_FALSE(IsIoEvent(Rec(ev::kPvHypercallV2, 1, {1})));
  EXPECT_FALSE(IsIoEvent(Rec(ev::kPvHypercall, 1)));
  EXPECT_FALSE(IsIoEvent(Rec(ev::kWake, 1, {0, 1})));
  EXPECT_TRUE(IsHypercallEvent(ev::kPvHypercallSubcall));
}

}  // namespace
}  // namespace tracefmt

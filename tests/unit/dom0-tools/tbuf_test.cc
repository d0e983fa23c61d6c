// xenbake-tbuf: parsing and formatting, and the command's logic over a fake control (the real
// libxenctrl path runs against xenbake-sim in tests/integration/dom0-tools).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tbuf/tbuf_main.h"
#include "tbuf/tbuf_text.h"

namespace xenbake::tbuf {
namespace {

using Cpus = std::vector<uint32_t>;

TEST(ParseCpuList, ReadsListsRangesAllAndBitmaps) {
  EXPECT_EQ(ParseCpuList("0-3,6", 7), (Cpus{0, 1, 2, 3, 6}));
  EXPECT_EQ(ParseCpuList("6,1,1", 7), (Cpus{1, 6}));
  EXPECT_EQ(ParseCpuList("all", 3), (Cpus{0, 1, 2, 3}));
  EXPECT_EQ(ParseCpuList("0x0f", 7), (Cpus{0, 1, 2, 3}));
  EXPECT_EQ(ParseCpuList("0x100", 15), (Cpus{8}));
}

TEST(ParseCpuList, RejectsMalformedLists) {
  for (const char* bad : {"", "3-1", "a", "1,", ",1", "1-", "0x", "0xz", "70000", "1--2"}) {
    EXPECT_FALSE(ParseCpuList(bad, 7).has_value()) << bad;
  }
}

TEST(FormatCpuList, CollapsesRuns) {
  EXPECT_EQ(FormatCpuList(Cpus{0, 1, 2, 6}), "0-2,6");
  EXPECT_EQ(FormatCpuList(Cpus{5}), "5");
  EXPECT_EQ(FormatCpuList(Cpus{}), "none");
  EXPECT_EQ(FormatCpuList(Cpus{0, 2, 3, 4, 8, 9}), "0,2-4,8-9");
}

TEST(ParsePages, AcceptsPositiveCounts) {
  EXPECT_EQ(ParsePages("32"), 32u);
  EXPECT_FALSE(ParsePages("0").has_value());
  EXPECT_FALSE(ParsePages("-1").has_value());
  EXPECT_FALSE(ParsePages("32k").has_value());
}

TEST(DescribeEventMask, NamesTheClasses) {
  EXPECT_EQ(DescribeEventMask(0x0002f000), "0x0002f000 (SCHED)");
  EXPECT_EQ(DescribeEventMask(0x0ffff000), "0x0ffff000 (all)");
  EXPECT_EQ(DescribeEventMask(0x0022f000), "0x0022f000 (SCHED, PV)");
  EXPECT_EQ(DescribeEventMask(0x00021000), "0x00021000 (SCHED, subclasses 0x1)");
}

TEST(FormatState, SaysWhatIsKnownAndWhatIsNot) {
  TraceBufferState s{.host = {.nr_cpus = 2, .max_cpu_id = 1, .cpu_khz = 2596120},
                     .pages_per_cpu = 32,
                     .event_mask = 0x0002f000,
                     .cpus_with_buffers = Cpus{0, 1},
                     .t_info_bytes = 4096};
  const std::string text = FormatState(s);
  EXPECT_NE(text.find("32 pages per CPU (128 KiB)"), std::string::npos) << text;
  EXPECT_NE(text.find("0x0002f000 (SCHED)"), std::string::npos);
  EXPECT_NE(text.find("buffers on 0-1"), std::string::npos);
  const nlohmann::json j = StateJson(s);
  EXPECT_EQ(j["pages_per_cpu"], 32);
  EXPECT_EQ(j["bytes_per_cpu"], 131072);
  EXPECT_EQ(j["cpus_with_buffers"], nlohmann::json({0, 1}));
  EXPECT_TRUE(j["enabled"].is_null());

  TraceBufferState empty;
  empty.host = {.nr_cpus = 4, .max_cpu_id = 3, .cpu_khz = 1};
  EXPECT_NE(FormatState(empty).find("not allocated"), std::string::npos);
  EXPECT_NE(FormatState(empty).find("event mask:  unknown"), std::string::npos);
  EXPECT_TRUE(StateJson(empty)["pages_per_cpu"].is_null());
}

// The size a host needs is the daemon's measurement; show gives the rule, the boot option, and
// Xen's largest size for this host (t_info's u16 offsets: (65535 - 129) / (CPU ids - 1)).
TEST(FormatState, GivesTheSizingRuleAndXensLargest) {
  TraceBufferState s;
  s.host = {.nr_cpus = 4, .max_cpu_id = 3, .cpu_khz = 1};
  const std::string text = FormatState(s);
  EXPECT_NE(text.find("tbuf_size=N on Xen's command line"), std::string::npos) << text;
  EXPECT_NE(text.find("xenbaked_recommended_tbuf_pages"), std::string::npos);
  EXPECT_NE(text.find("Largest Xen accepts on this host: 21802 pages"), std::string::npos) << text;
  EXPECT_EQ(StateJson(s)["max_pages_per_cpu"], 21802);
}

// A hypervisor's trace-buffer controls with Xen's rules: the size is set once.
class FakeControl : public TraceBufferControl {
 public:
  tracefmt::Result<TraceBufferState> Query() override {
    TraceBufferState s;
    s.host = {.nr_cpus = 4, .max_cpu_id = 3, .cpu_khz = 2'000'000};
    if (pages) {
      s.pages_per_cpu = pages;
      s.cpus_with_buffers = Cpus{0, 1, 2, 3};
    }
    s.event_mask = mask;
    return s;
  }
  tracefmt::Status SetPagesPerCpu(uint32_t p) override {
    calls.push_back("size");
    if (pages) return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument, "already set");
    pages = p;
    return {};
  }
  tracefmt::Status SetEventMask(uint32_t m) override {
    calls.push_back("mask");
    mask = m;
    return {};
  }
  tracefmt::Status SetCpuMask(const Cpus& c) override {
    calls.push_back("cpus");
    cpus = c;
    return {};
  }
  tracefmt::Status Enable(uint32_t p) override {
    calls.push_back("enable");
    if (!pages) pages = p;
    enabled = true;
    return {};
  }
  tracefmt::Status Disable() override {
    calls.push_back("disable");
    enabled = false;
    return {};
  }

  std::optional<uint32_t> pages;
  uint32_t mask = 0x0ffff000;
  Cpus cpus;
  bool enabled = false;
  std::vector<std::string> calls;
};

// A request with the named fields set, the rest left unset.
TbufRequest Request(TbufRequest::Verb verb, std::optional<std::string> pages = {},
                    std::optional<std::string> mask = {}, std::optional<std::string> cpus = {}) {
  TbufRequest r;
  r.verb = verb;
  r.pages_text = std::move(pages);
  r.mask_text = std::move(mask);
  r.cpus_text = std::move(cpus);
  return r;
}

TbufRequest ShowJson() {
  TbufRequest r = Request(TbufRequest::Verb::kShow);
  r.json = true;
  return r;
}

struct TbufRun {
  int status;
  std::string out;
  std::string err;
};

std::string Slurp(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

TbufRun RunWith(FakeControl& control, const TbufRequest& request) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  const int status = RunTbuf(request, control, out, err);
  return {status, Slurp(out), Slurp(err)};
}

TEST(RunTbuf, EnableSetsMasksBeforeTracingStarts) {
  FakeControl control;
  const TbufRun r = RunWith(control, Request(TbufRequest::Verb::kEnable, "64", "sched", "0-1"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(control.calls, (std::vector<std::string>{"mask", "cpus", "enable"}));
  EXPECT_EQ(control.pages, 64u);
  EXPECT_EQ(control.mask, 0x0002f000u);
  EXPECT_EQ(control.cpus, (Cpus{0, 1}));
  EXPECT_TRUE(control.enabled);
  EXPECT_NE(r.out.find("64 pages per CPU"), std::string::npos) << r.out;
}

TEST(RunTbuf, ABadValueChangesNothing) {
  FakeControl control;
  const TbufRun r =
      RunWith(control, Request(TbufRequest::Verb::kSet, std::nullopt, "sched", "3-1"));
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(control.calls.empty());
  EXPECT_NE(r.err.find("--cpus 3-1"), std::string::npos) << r.err;
  EXPECT_EQ(RunWith(control, Request(TbufRequest::Verb::kSet, std::nullopt, "bogus")).status, 2);
  EXPECT_EQ(RunWith(control, Request(TbufRequest::Verb::kSet)).status, 2);  // nothing to set
  EXPECT_TRUE(control.calls.empty());
}

TEST(RunTbuf, ASecondSizeIsRefusedWithTheReason) {
  FakeControl control;
  control.pages = 32;
  const TbufRun r = RunWith(control, Request(TbufRequest::Verb::kSet, "64"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("already exist with 32 pages"), std::string::npos) << r.err;
  EXPECT_EQ(RunWith(control, Request(TbufRequest::Verb::kSet, "32")).status, 1);
}

TEST(RunTbuf, ShowsJson) {
  FakeControl control;
  control.pages = 8;
  const TbufRun r = RunWith(control, ShowJson());
  ASSERT_EQ(r.status, 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["pages_per_cpu"], 8);
  EXPECT_EQ(j["event_mask"], "0x0ffff000");
}

TEST(RunTbuf, DisableTurnsTracingOff) {
  FakeControl control;
  control.enabled = true;
  EXPECT_EQ(RunWith(control, Request(TbufRequest::Verb::kDisable)).status, 0);
  EXPECT_FALSE(control.enabled);
}

}  // namespace
}  // namespace xenbake::tbuf

// The overflow study agrees with its analytic bound over a range of buffer sizes and rates.
#include "simulator/overflow_study.h"

#include <gtest/gtest.h>

namespace simulator {
namespace {

TEST(OverflowStudyTest, LossFreeBelowTheBoundAndAsPredictedAbove) {
  OverflowStudyConfig config;
  config.pages = {1, 4, 16};
  config.rates_hz = {50'000, 400'000};
  config.latency_over_bound = {0.3, 0.95, 1.05, 3};
  config.cycles = 30;
  for (const OverflowPoint& p : RunOverflowStudy(config)) {
    SCOPED_TRACE(testing::Message()
                 << p.pages << " pages, " << p.rate_hz << "/s, L/T " << p.latency_ns / p.bound_ns);
    EXPECT_TRUE(p.agrees());
    EXPECT_NEAR(p.measured_loss(), p.predicted_loss(), 0.01);
    EXPECT_LE(p.lost_reported, p.dropped);  // what the consumer was told never exceeds the truth
  }
}

TEST(OverflowStudyTest, TableAndPlotNameEveryPoint) {
  OverflowStudyConfig config;
  config.pages = {1};
  config.rates_hz = {100'000};
  config.latency_over_bound = {0.5, 2};
  config.cycles = 5;
  const auto points = RunOverflowStudy(config);
  const std::string table = OverflowTableMarkdown(points);
  EXPECT_NE(table.find("L = 0.5·T"), std::string::npos);
  EXPECT_NE(table.find("33."), std::string::npos);  // (2T - T) / (2T + T)
  const std::string svg = OverflowSvg(points);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace simulator

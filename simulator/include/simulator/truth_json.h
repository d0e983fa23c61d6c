// simulator/truth_json.h — Truth as JSON (the form xenbake-sim prints and tests read back).
//
//   nlohmann::json j = simulator::TruthToJson(host->TruthSnapshot());
//   fmt::print("{}\n", j.dump(2));
#pragma once

#include <nlohmann/json.hpp>

#include "simulator/truth.h"

namespace simulator {

nlohmann::json TruthToJson(const Truth& truth);

}  // namespace simulator

// Rendering of an accounting result: one JSON object, or text tables for a person.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "dom0tools/account.h"

namespace dom0tools::internal {

nlohmann::json AccountJson(const AccountResult& result, const AccountOptions& options);
std::string AccountText(const AccountResult& result, const AccountOptions& options);

}  // namespace dom0tools::internal

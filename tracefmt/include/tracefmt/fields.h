// tracefmt/fields.h — a record's data as named fields, for people and for JSON.
//
// The typed views in events.h serve code that accounts; this serves code that shows a record: one
// list of (name, value) pairs per known layout, which a text dump and a JSON dump render alike, so
// the two can never disagree. Records without a known layout give no fields; show their raw words.
//
//   RecordFields f = DecodeFields(rec);
//   for (const Field& field : f.view()) print(field.name, field.symbol.empty() ? field.value
//                                                                               : field.symbol);
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "tracefmt/record.h"

namespace tracefmt {

struct Field {
  std::string_view name;
  uint64_t value = 0;
  std::string_view symbol;  // a name for `value` when it is an enumeration (a runstate)
};

struct RecordFields {
  static constexpr size_t kMax = 8;  // PV_HYPERCALL_V2: op and six arguments
  std::array<Field, kMax> items{};
  size_t count = 0;
  std::span<const Field> view() const { return {items.data(), count}; }
  void Add(std::string_view name, uint64_t value, std::string_view symbol = {}) {
    if (count < kMax) items[count++] = Field{name, value, symbol};
  }
};

// The fields of a record whose layout the catalogue knows and whose words are all there; empty
// otherwise (unknown event, or a record too short for its layout).
RecordFields DecodeFields(const Record& rec);

}  // namespace tracefmt

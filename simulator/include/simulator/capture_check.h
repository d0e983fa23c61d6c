// simulator/capture_check.h — does a consumer's capture hold exactly what the simulator produced?
//
// Both files are xentrace files: the capture a consumer wrote (xentrace, xenbaked) and the
// reference the simulator wrote of every byte it put in the rings (ProducedLog). Per CPU, the
// records must be the same, in the same order: none missing, none extra, WRAP padding included.
//
//   auto cmp = CompareCaptures("out.bin", "produced.bin");
//   if (cmp && cmp->ok()) ... cmp->lost_reported == truth.TotalReported() ...
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tracefmt/result.h"

namespace simulator {

struct CaptureComparison {
  uint64_t records_compared = 0;
  uint64_t records_discarded = 0;  // reference records before the capture began (allowed prefix)
  uint64_t lost_in_reference = 0;  // LOST_RECORDS counts in the part of the reference compared
  uint64_t lost_reported = 0;      // sum of the counts in the capture's TRC_LOST_RECORDS records
  uint64_t lost_records = 0;       // how many such records
  std::map<uint32_t, uint64_t> records_per_cpu;
  std::map<uint32_t, std::string> first_events;  // names of each CPU's first captured records
  std::vector<std::string> problems;             // empty when the capture is exact
  bool ok() const { return problems.empty(); }
};

// With `allow_discarded_prefix`, each CPU's capture may begin later than the reference (the
// consumer discarded what was in the buffers, xentrace -D): it must then match the reference from
// its first timestamped record on, to the end.
tracefmt::Result<CaptureComparison> CompareCaptures(const std::string& capture_path,
                                                    const std::string& reference_path,
                                                    bool allow_discarded_prefix = false);

}  // namespace simulator

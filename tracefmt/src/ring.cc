#include "tracefmt/ring.h"

namespace tracefmt {

std::string_view RingAnomalyName(RingAnomaly anomaly) {
  switch (anomaly) {
    case RingAnomaly::kNone:
      return "none";
    case RingAnomaly::kProdMisaligned:
      return "prod misaligned";
    case RingAnomaly::kProdOutOfRange:
      return "prod out of range";
    case RingAnomaly::kConsMisaligned:
      return "cons misaligned";
    case RingAnomaly::kConsOutOfRange:
      return "cons out of range";
    case RingAnomaly::kOverfull:
      return "window larger than the buffer";
    case RingAnomaly::kCorruptRecord:
      return "corrupt record";
  }
  return "unknown";
}

}  // namespace tracefmt

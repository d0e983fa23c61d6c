#include "tracefmt/result.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace tracefmt {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kTruncated:
      return "truncated";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kBadRingPointer:
      return "bad ring pointer";
    case ErrorCode::kIo:
      return "I/O error";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kNotFound:
      return "not found";
  }
  return "error";
}

std::string Error::Describe() const {
  std::string out(ErrorCodeName(code));
  if (offset != kNoOffset) out += fmt::format(" at byte {}", offset);
  out += ": ";
  out += message;
  if (sys_errno != 0) out += fmt::format(" ({})", std::strerror(sys_errno));
  return out;
}

Error MakeError(ErrorCode code, std::string message, uint64_t offset) {
  return Error{code, std::move(message), offset, 0};
}

Error MakeSystemError(std::string message) {
  const int saved = errno;
  return Error{ErrorCode::kIo, std::move(message), Error::kNoOffset, saved};
}

}  // namespace tracefmt

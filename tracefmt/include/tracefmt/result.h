// tracefmt/result.h — the project's one error vocabulary.
//
// Hot paths return errors as values: a `Result<T>` holds either a T or an `Error` that says what
// went wrong, where (a byte offset into the input, when there is one) and, for system calls, the
// errno. Exceptions are used only where a program gives up at start-up or argument parsing.
//
//   tracefmt::Result<TraceFile> file = tracefmt::TraceFile::Open(path);
//   if (!file) {
//     fmt::print(stderr, "{}\n", file.error().Describe());
//     return 1;
//   }
//   use(*file);
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace tracefmt {

enum class ErrorCode : uint8_t {
  kTruncated,        // input ends inside a record or header
  kCorrupt,          // bytes that cannot be what they claim to be
  kBadRingPointer,   // a cons/prod value that is unaligned or out of range
  kIo,               // a system call failed; `sys_errno` says why
  kInvalidArgument,  // the caller asked for something impossible
  kUnsupported,      // a well-formed input this version does not understand
  kNotFound,
};

std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kCorrupt;
  std::string message;
  // Byte offset into the input where the problem was found; kNoOffset when it has none.
  uint64_t offset = kNoOffset;
  int sys_errno = 0;

  static constexpr uint64_t kNoOffset = ~uint64_t{0};

  // One line for a person: "truncated at byte 1234: record header says 20 bytes, 8 remain".
  std::string Describe() const;
};

Error MakeError(ErrorCode code, std::string message, uint64_t offset = Error::kNoOffset);
// An kIo error carrying the current errno and its text.
Error MakeSystemError(std::string message);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  static Status Ok() { return {}; }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace tracefmt

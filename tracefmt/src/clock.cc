#include "tracefmt/clock.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

#include "new_file.h"
#include "tracefmt/trace_file.h"

namespace tracefmt {

TscClock::TscClock(uint64_t cpu_khz) : khz_(cpu_khz == 0 ? 1 : cpu_khz) {}

uint64_t TscClock::ToTicks(uint64_t ns) const {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(ns) * khz_ / 1000000);
}

std::string SidecarPath(const std::string& capture_path) {
  return capture_path + ".meta";
}

Status WriteCaptureMeta(const std::string& capture_path, const CaptureMeta& meta) {
  const std::string path = SidecarPath(capture_path);
  std::string text = "# xenbaked capture metadata, version 1\n";
  text += fmt::format("cpu_khz {}\n", meta.cpu_khz);
  if (meta.tbuf_pages != 0) text += fmt::format("tbuf_pages {}\n", meta.tbuf_pages);
  if (meta.event_mask != 0) text += fmt::format("event_mask {:#010x}\n", meta.event_mask);
  if (!meta.producer.empty()) text += fmt::format("producer {}\n", meta.producer);
  // Written whole under a temporary name, then renamed: readers find the old sidecar or the new
  // one, and a link at the path is replaced, never written through.
  Result<NewFile> file = NewFileBeside(path, kOutputFileMode);
  if (!file) return file.error();
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(file->fd(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeSystemError(fmt::format("cannot write {}", path));
    done += static_cast<size_t>(n);
  }
  return file->RenameTo(path);
}

namespace {
bool ParseUnsigned(std::string_view text, uint64_t& out) {
  int base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
    base = 16;
  }
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && ptr == text.data() + text.size();
}
}  // namespace

Result<CaptureMeta> ReadCaptureMeta(const std::string& capture_path) {
  const std::string path = SidecarPath(capture_path);
  // A sidecar is a few short lines: more than this is not one, and is not read whole.
  constexpr uint64_t kMaxSidecarBytes = 64 * 1024;
  Result<std::vector<std::byte>> bytes =
      ReadRegularFile(path, kMaxSidecarBytes, "a capture sidecar");
  if (!bytes) {
    if (bytes.error().code == ErrorCode::kInvalidArgument) return bytes.error();
    return MakeError(ErrorCode::kNotFound, fmt::format("no sidecar file {}", path));
  }
  const std::string text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  std::istringstream in(text);
  CaptureMeta meta;
  std::string line;
  uint64_t offset = 0;
  while (std::getline(in, line)) {
    const uint64_t line_offset = offset;
    offset += line.size() + 1;
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.find(' ');
    const std::string key = line.substr(0, space);
    const std::string value = space == std::string::npos ? "" : line.substr(space + 1);
    uint64_t number = 0;
    if (key == "producer") {
      meta.producer = value;
    } else if (key == "cpu_khz" || key == "tbuf_pages" || key == "event_mask") {
      if (!ParseUnsigned(value, number) || number > UINT32_MAX * uint64_t{1000})
        return MakeError(ErrorCode::kCorrupt,
                         fmt::format("{}: bad value '{}' for {}", path, value, key), line_offset);
      if (key == "cpu_khz") meta.cpu_khz = number;
      if (key == "tbuf_pages") meta.tbuf_pages = static_cast<uint32_t>(number);
      if (key == "event_mask") meta.event_mask = static_cast<uint32_t>(number);
    }  // unknown keys are for newer versions: ignored
  }
  if (meta.cpu_khz == 0)
    return MakeError(ErrorCode::kCorrupt, fmt::format("{}: no cpu_khz line", path));
  return meta;
}

Result<uint64_t> ResolveCpuKhz(uint64_t option_khz, const std::string& capture_path) {
  if (option_khz != 0) return option_khz;
  Result<CaptureMeta> meta = ReadCaptureMeta(capture_path);
  if (meta) return meta->cpu_khz;
  if (meta.error().code != ErrorCode::kNotFound) return meta.error();
  return MakeError(ErrorCode::kInvalidArgument,
                   fmt::format("the CPU frequency of {} is unknown: a xentrace file does not "
                               "record it; pass --cpu-khz (xc_physinfo's cpu_khz on the host "
                               "that captured it, e.g. from `xl info`)",
                               capture_path));
}

}  // namespace tracefmt

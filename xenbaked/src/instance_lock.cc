#include "xenbaked/instance_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <utility>

#include "xenbaked/publishers.h"

namespace xenbaked {
namespace {

constexpr mode_t kLockFileMode = 0640;

// The pid written in a lock file, or 0 when there is none yet (its holder may be about to write
// it) or the file holds something else.
long ReadPid(int fd) {
  char text[32] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  if (n <= 0) return 0;
  long pid = 0;
  auto [end, ec] = std::from_chars(text, text + n, pid);
  return ec == std::errc() && end != text && pid > 0 ? pid : 0;
}

}  // namespace

tracefmt::Result<InstanceLock> InstanceLock::Acquire(const std::string& path) {
  const std::string lock_path = path + ".lock";
  // A holder that exits removes the file, then unlocks: a lock won on a file already removed is
  // no lock at all, so it is taken again on the file now at the path (a few rounds at most).
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd =
        ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, kLockFileMode);
    if (fd < 0)
      return tracefmt::MakeSystemError(fmt::format("cannot open lock file {}", lock_path));
    InstanceLock lock;
    lock.fd_ = fd;
    struct stat held {};
    // Until it is won, `lock` only closes the descriptor when it goes (no path to remove).
    if (::fstat(fd, &held) != 0 || !S_ISREG(held.st_mode))
      return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument,
                                 fmt::format("lock file {} is not a regular file", lock_path));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK)
        return tracefmt::MakeSystemError(fmt::format("cannot lock {}", lock_path));
      const long pid = ReadPid(fd);
      return tracefmt::MakeError(
          tracefmt::ErrorCode::kInvalidArgument,
          fmt::format("another xenbaked ({}) is using {} (it holds {}); stop it first or give "
                      "this one other paths",
                      pid > 0 ? fmt::format("pid {}", pid) : std::string("pid unknown"), path,
                      lock_path));
    }
    struct stat now {};
    if (::lstat(lock_path.c_str(), &now) != 0 || now.st_dev != held.st_dev ||
        now.st_ino != held.st_ino)
      continue;  // removed or replaced since it was opened: `lock` closes it
    const std::string pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0 ||
        ::fchmod(fd, kLockFileMode) != 0)
      return tracefmt::MakeSystemError(fmt::format("cannot write lock file {}", lock_path));
    lock.lock_path_ = lock_path;
    return lock;
  }
  return tracefmt::MakeError(tracefmt::ErrorCode::kIo,
                             fmt::format("lock file {} keeps being replaced", lock_path));
}

InstanceLock::InstanceLock(InstanceLock&& other) noexcept {
  *this = std::move(other);
}

InstanceLock& InstanceLock::operator=(InstanceLock&& other) noexcept {
  if (this != &other) {
    Release();
    lock_path_ = std::exchange(other.lock_path_, {});
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

InstanceLock::~InstanceLock() {
  Release();
}

void InstanceLock::Release() {
  if (fd_ < 0) return;
  // Removed while still locked: whoever opens the path next makes a new file (see Acquire).
  if (!lock_path_.empty()) ::unlink(lock_path_.c_str());
  ::close(std::exchange(fd_, -1));
}

tracefmt::Result<std::vector<InstanceLock>> LockOutputs(const DaemonOptions& options) {
  std::vector<std::string> paths;
  if (!options.socket_path.empty()) paths.push_back(options.socket_path);
  if (!options.shm_name.empty()) paths.push_back(SnapshotPath(options.shm_name));
  if (!options.log_dir.empty()) paths.push_back(AccountingLogPath(options.log_dir));
  if (!options.capture_path.empty()) paths.push_back(options.capture_path);
  std::vector<InstanceLock> locks;
  for (const std::string& path : paths) {
    auto lock = InstanceLock::Acquire(path);
    if (!lock) return lock.error();
    locks.push_back(std::move(*lock));
  }
  return locks;
}

}  // namespace xenbaked

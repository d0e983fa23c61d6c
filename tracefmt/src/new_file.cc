#include "new_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>
#include <vector>

namespace tracefmt {

namespace {
// What may be replaced at `path`: nothing, a regular file nobody holds a lock on, or a symbolic
// link (rename replaces the link itself). A device, a FIFO, a socket or a directory is never
// replaced (`--capture /dev/null` must not turn the system's /dev/null into a file), and neither
// is a file another process holds an flock on (another xenbaked's lock file).
Status CheckReplaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return MakeSystemError(fmt::format("cannot examine {}", path));
  }
  if (S_ISLNK(st.st_mode)) return Status::Ok();
  if (!S_ISREG(st.st_mode))
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} exists and is not a regular file: not replacing it", path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::Ok();  // gone meanwhile, or unreadable: nobody's lock to respect
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the lock if it was taken
  if (held)
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} is locked by another process: not replacing it", path));
  return Status::Ok();
}
}  // namespace

Result<NewFile> NewFileBeside(const std::string& path, mode_t mode) {
  if (Status st = CheckReplaceable(path); !st) return st.error();
  // mkostemp: O_CREAT|O_EXCL under a name nobody could have prepared (a link there fails it).
  std::string temp = path + ".tmp-XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return MakeSystemError(fmt::format("cannot create a file beside {}", path));
  temp.assign(name.data());
  NewFile file(fd, temp);
  if (::fchmod(fd, mode) != 0)
    return MakeSystemError(fmt::format("cannot set the mode of {}", temp));
  return file;
}

NewFile::NewFile(NewFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), temp_path_(std::exchange(other.temp_path_, {})) {}

NewFile::~NewFile() {
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  if (fd_ >= 0) ::close(fd_);
}

Status NewFile::RenameTo(const std::string& path) {
  // rename replaces a link at `path` itself, never the file it points to.
  if (::rename(temp_path_.c_str(), path.c_str()) != 0)
    return MakeSystemError(fmt::format("cannot rename {} to {}", temp_path_, path));
  temp_path_.clear();
  return Status::Ok();
}

int NewFile::ReleaseFd() {
  return std::exchange(fd_, -1);
}

}  // namespace tracefmt

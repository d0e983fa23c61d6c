#include "new_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>
#include <vector>

namespace tracefmt {

Result<NewFile> NewFileBeside(const std::string& path, mode_t mode) {
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

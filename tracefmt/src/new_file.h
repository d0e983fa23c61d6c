// tracefmt/src/new_file.h (private) — files created as root safely: a new file under a random
// temporary name in the target's directory (O_EXCL, never following a link, close-on-exec),
// given its mode with fchmod whatever the umask, then renamed over the target. An old file of
// another mode or a symbolic link at the target is replaced, never written through; a device,
// FIFO, socket, directory or a file another process holds locked is refused before anything is
// created. Used for the raw capture and its .meta sidecar.
//
//   auto tmp = NewFileBeside(path, 0640);
//   if (!tmp) return tmp.error();
//   write(tmp->fd, ...);
//   if (Status st = tmp->RenameTo(path); !st) return st;   // the file is now at `path`
#pragma once

#include <sys/types.h>

#include <string>

#include "tracefmt/result.h"

namespace tracefmt {

// The mode of the files the project writes for root and a group: the capture and its sidecar,
// like the accounting log and the snapshot.
inline constexpr mode_t kOutputFileMode = 0640;

class NewFile {
 public:
  NewFile(NewFile&& other) noexcept;
  NewFile& operator=(NewFile&&) = delete;
  // Until renamed: the temporary is removed and the descriptor closed.
  ~NewFile();

  int fd() const { return fd_; }
  // Renames the temporary over `path`. The descriptor stays open; the caller takes it with
  // ReleaseFd or lets the destructor close it.
  Status RenameTo(const std::string& path);
  int ReleaseFd();

 private:
  friend Result<NewFile> NewFileBeside(const std::string& path, mode_t mode);
  NewFile(int fd, std::string temp_path) : fd_(fd), temp_path_(std::move(temp_path)) {}
  int fd_ = -1;
  std::string temp_path_;  // "" once renamed
};

Result<NewFile> NewFileBeside(const std::string& path, mode_t mode);

}  // namespace tracefmt

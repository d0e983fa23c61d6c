// xenbaked/instance_lock.h — one daemon per set of paths. Before anything at an output path is
// unlinked or replaced (the socket, the snapshot, the accounting log, the capture), the daemon
// takes an exclusive flock on a lock file beside it, "PATH.lock", holding its pid. A second
// daemon given the same path finds it locked and stops with "another xenbaked (pid N) is using
// PATH" before touching anything. The kernel drops the lock when the process dies, however it
// dies: a lock file left behind by a killed daemon does not stop the next one.
//
//   auto locks = LockOutputs(options);          // after the outputs' directories exist
//   if (!locks) { log.Error("{}", locks.error().Describe()); return 1; }
//   ... run; the locks go (and their files with them) when `locks` does
#pragma once

#include <string>
#include <vector>

#include "tracefmt/result.h"
#include "xenbaked/daemon.h"

namespace xenbaked {

class InstanceLock {
 public:
  // Locks `path + ".lock"` (created mode 0640, symlinks refused). The error names the holder's pid
  // when another process holds the lock.
  static tracefmt::Result<InstanceLock> Acquire(const std::string& path);

  InstanceLock(InstanceLock&& other) noexcept;
  InstanceLock& operator=(InstanceLock&& other) noexcept;
  ~InstanceLock();  // removes the lock file, then unlocks

  const std::string& lock_path() const { return lock_path_; }

 private:
  InstanceLock() = default;
  void Release();
  std::string lock_path_;
  int fd_ = -1;
};

// The lock files of every configured output: the socket, the snapshot, the accounting log
// (LOG-DIR/accounting.log) and the capture. Their directories must exist (EnsureOutputDirectories).
tracefmt::Result<std::vector<InstanceLock>> LockOutputs(const DaemonOptions& options);

}  // namespace xenbaked

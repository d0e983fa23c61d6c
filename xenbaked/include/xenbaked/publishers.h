// xenbaked/publishers.h — the daemon's outputs, made from its options: the accounting log, the
// shared-memory snapshot, the Unix-socket JSON API and the Prometheus endpoint, each wrapped as a
// Publisher and handed to the Daemon. Main uses it; so do the integration tests, so they run the
// same wiring as the installed binary.
//
//   Daemon daemon(io, scheduler, hypervisor, options, log);
//   auto endpoints = AddPublishers(daemon, io, options, physinfo, log, RealtimeNs);
//   if (!endpoints) die(endpoints.error());
//   daemon.Start();   // every interval each publisher gets the view; Stop closes them
//
// Directories the outputs live in (the log directory, the socket's and the capture's parent)
// are created when missing, mode 0750 (the socket's parent owned by --socket-group when given,
// so the group can reach the socket).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "tracefmt/result.h"
#include "xenbaked/daemon.h"
#include "xenbaked/hypervisor.h"
#include "xenbaked/log.h"

namespace boost::asio {
class io_context;
}

namespace xenbaked {

// What AddPublishers started, for logs and tests.
struct PublisherEndpoints {
  std::string socket_path;               // "" when the API is off
  std::optional<uint16_t> metrics_port;  // the bound port (resolved when 0 was asked for)
  std::string accounting_log_path;       // "" when off
  std::string snapshot_path;             // "" when off
};

// Creates every configured publisher (the servers start listening on `io` now) and adds it to
// `daemon`. An error names the output and the path; nothing is left half-made that matters
// (publishers already added are closed when the daemon goes).
tracefmt::Result<PublisherEndpoints> AddPublishers(Daemon& daemon, boost::asio::io_context& io,
                                                   const DaemonOptions& options,
                                                   const PhysInfo& physinfo, Logger& log,
                                                   std::function<uint64_t()> realtime_ns);

// `dir` and any missing parents, created with `mode` (existing ones are left as they are); with
// `group`, a directory this call creates gets that group. An error says which directory and why.
// Made and owned through descriptors (mkdirat, fchmod, fchown); `dir` itself must not be a
// symbolic link, and a link on the way to it is followed only when root or this user owns it.
tracefmt::Status EnsureDirectory(const std::string& dir, mode_t mode = 0750,
                                 std::optional<gid_t> group = std::nullopt);
// EnsureDirectory of the directory part of `path` ("" or "/" when there is none: nothing to do).
tracefmt::Status EnsureParentDirectory(const std::string& path, mode_t mode = 0750,
                                       std::optional<gid_t> group = std::nullopt);

// The directories of every configured output (the capture's, the log directory, the socket's,
// owned by --socket-group), made when missing. AddPublishers calls it; Main first, to lock.
tracefmt::Status EnsureOutputDirectories(const DaemonOptions& options);

// Where the outputs named by the options live: /dev/shm/NAME (or NAME when it is under /dev/),
// LOG-DIR/accounting.log.
std::string SnapshotPath(const std::string& shm_name);
std::string AccountingLogPath(const std::string& log_dir);

// A group given by name ("xenbaked") or number ("4244").
tracefmt::Result<gid_t> ResolveGroup(std::string_view name_or_gid);

}  // namespace xenbaked

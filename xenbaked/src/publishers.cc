#include "xenbaked/publishers.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <charconv>
#include <vector>

#include "xenbaked/publish/accounting_log.h"
#include "xenbaked/publish/acct_records.h"
#include "xenbaked/publish/api_server.h"
#include "xenbaked/publish/metrics.h"
#include "xenbaked/publish/snapshot_writer.h"
#include "xenbaked/publish/unique_fd.h"

namespace xenbaked {
namespace {

// The accounting log as a publisher: interval records for each closed window of the first
// length, a final record per destroyed domain, shutdown records and the run's end at exit.
class AccountingLogPublisher final : public Publisher {
 public:
  explicit AccountingLogPublisher(publish::AccountingLog log) : log_(std::move(log)) {}
  std::string_view name() const override { return "accounting log"; }
  tracefmt::Status Publish(const publish::PublishView& v) override {
    names_ = v.names;
    if (v.windows.length_count() > 0) {
      for (const Window& w : v.windows.windows(0)) {
        if (logged_any_ && w.index <= last_index_) continue;
        for (const tracefmt::AcctRecord& r : publish::IntervalRecords(
                 w, v.realtime_ns, v.names, log_.stats(), v.health, v.reconcile))
          log_.Append(r);
        last_index_ = w.index;
        logged_any_ = true;
      }
    }
    return log_.Flush();
  }
  void OnFinal(const DomainTotals& d, uint64_t realtime_ns) override {
    log_.Append(
        publish::FinalRecord(d, tracefmt::AcctFinalReason::kDestroyed, realtime_ns, names_));
  }
  tracefmt::Status Reopen() override { return log_.Reopen(); }
  tracefmt::Status Close(const publish::PublishView& v) override {
    (void)Publish(v);
    for (const tracefmt::AcctRecord& r : publish::ShutdownRecords(v.totals, v.realtime_ns, v.names))
      log_.Append(r);
    if (log_.run())
      log_.Append(
          publish::RunEndRecord(*log_.run(), v.health, v.totals, v.realtime_ns, log_.stats()));
    return log_.Close();
  }

 private:
  publish::AccountingLog log_;
  publish::DomainNames names_;
  uint64_t last_index_ = 0;
  bool logged_any_ = false;
};

// The shared-memory snapshot as a publisher.
class SnapshotPublisher final : public Publisher {
 public:
  explicit SnapshotPublisher(publish::SnapshotWriter writer) : writer_(std::move(writer)) {}
  std::string_view name() const override { return "shared-memory snapshot"; }
  tracefmt::Status Publish(const publish::PublishView& v) override { return writer_.Publish(v); }
  tracefmt::Status Close(const publish::PublishView& v) override {
    tracefmt::Status st = writer_.Publish(v);
    writer_.MarkStopped();
    return st;
  }

 private:
  publish::SnapshotWriter writer_;
};

// The Unix-socket JSON API as a publisher. Close hands subscribers the final figures, then
// closes every client, stops the server's own thread and removes the socket file.
class ApiPublisher final : public Publisher {
 public:
  explicit ApiPublisher(std::unique_ptr<publish::ApiServer> server) : server_(std::move(server)) {}
  ~ApiPublisher() override { server_->Stop(); }
  std::string_view name() const override { return "socket API"; }
  tracefmt::Status Publish(const publish::PublishView& v) override {
    server_->Publish(v);
    return {};
  }
  tracefmt::Status Close(const publish::PublishView& v) override {
    server_->Publish(v);
    server_->Stop();
    return {};
  }

 private:
  std::unique_ptr<publish::ApiServer> server_;
};

// The Prometheus endpoint as a publisher: each interval renders the text scrapes then serve.
class MetricsPublisher final : public Publisher {
 public:
  explicit MetricsPublisher(std::unique_ptr<publish::MetricsServer> server)
      : server_(std::move(server)) {}
  ~MetricsPublisher() override { server_->Stop(); }
  std::string_view name() const override { return "metrics"; }
  tracefmt::Status Publish(const publish::PublishView& v) override {
    server_->Publish(v);
    return {};
  }
  tracefmt::Status Close(const publish::PublishView& /*final_view*/) override {
    server_->Stop();
    return {};
  }

 private:
  std::unique_ptr<publish::MetricsServer> server_;
};

}  // namespace

tracefmt::Result<gid_t> ResolveGroup(std::string_view text) {
  if (text.empty())
    return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument, "empty group name");
  gid_t gid = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), gid);
  if (ec == std::errc() && end == text.data() + text.size()) return gid;
  const std::string name(text);
  std::vector<char> buf(16384);
  group entry{};
  group* found = nullptr;
  const int rc = ::getgrnam_r(name.c_str(), &entry, buf.data(), buf.size(), &found);
  if (rc != 0) {
    errno = rc;
    return tracefmt::MakeSystemError(fmt::format("looking up group '{}'", name));
  }
  if (found == nullptr)
    return tracefmt::MakeError(tracefmt::ErrorCode::kNotFound,
                               fmt::format("no group named '{}'", name));
  return found->gr_gid;
}

namespace {

// Opens the directory `name` in `parent_fd` without following a symbolic link at `name`.
int OpenDirectoryAt(int parent_fd, const std::string& name, int access) {
  return ::openat(parent_fd, name.c_str(), access | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Why `name` in `parent_fd` could not be opened as a directory, in words.
tracefmt::Error NotADirectory(int parent_fd, const std::string& name, const std::string& path) {
  const int err = errno;
  struct stat st {};
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return tracefmt::MakeError(
          tracefmt::ErrorCode::kInvalidArgument,
          fmt::format("{} is a symbolic link: refused (give the directory it points to)", path));
    if (!S_ISDIR(st.st_mode))
      return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument,
                                 fmt::format("{} exists and is not a directory", path));
  }
  errno = err;
  return tracefmt::MakeSystemError(fmt::format("cannot open directory {}", path));
}

// `e` with the output and its path in front: "socket /run/x/api.sock: ...".
tracefmt::Error InContext(std::string_view what, const std::string& path,
                          const tracefmt::Error& e) {
  tracefmt::Error out = e;
  out.message = fmt::format("{} {}: {}", what, path, e.message);
  return out;
}

}  // namespace

// Walks the path one component at a time through directory descriptors, so that what is made,
// chmod-ed and chown-ed is the directory opened, never what a path names a moment later. A
// symbolic link is followed only where it leads to a directory that existed and the link belongs
// to root or to this user (/var/run -> /run); the directory asked for is never a link.
tracefmt::Status EnsureDirectory(const std::string& dir, mode_t mode, std::optional<gid_t> group) {
  if (dir.empty()) return {};
  std::vector<std::string> parts;
  for (size_t start = 0; start < dir.size();) {
    size_t end = dir.find('/', start);
    if (end == std::string::npos) end = dir.size();
    if (end > start && dir.compare(start, end - start, ".") != 0)
      parts.push_back(dir.substr(start, end - start));
    start = end + 1;
  }
  publish::UniqueFd at(::open(dir.starts_with('/') ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!at) return tracefmt::MakeSystemError(fmt::format("cannot open the parent of {}", dir));
  std::string walked = dir.starts_with('/') ? "" : ".";
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& name = parts[i];
    walked += "/" + name;
    const bool last = i + 1 == parts.size();
    publish::UniqueFd next(OpenDirectoryAt(at.get(), name, O_PATH));
    bool created = false;
    if (!next && errno == ENOENT) {
      if (::mkdirat(at.get(), name.c_str(), mode) != 0 && errno != EEXIST)
        return tracefmt::MakeSystemError(fmt::format("cannot create directory {}", walked));
      created = true;
      next.Reset(OpenDirectoryAt(at.get(), name, O_RDONLY));
    }
    if (!next && !last && (errno == ELOOP || errno == ENOTDIR)) {
      // An existing link on the way: trusted when root or this user made it.
      struct stat link {};
      if (::fstatat(at.get(), name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(link.st_mode) && (link.st_uid == 0 || link.st_uid == ::geteuid()))
        next.Reset(::openat(at.get(), name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    }
    if (!next) return NotADirectory(at.get(), name, walked);
    if (created) {
      // mkdir's mode passes through the umask; the directory gets exactly `mode`.
      if (::fchmod(next.get(), mode) != 0)
        return tracefmt::MakeSystemError(
            fmt::format("cannot set the mode of directory {}", walked));
      if (group && ::fchown(next.get(), static_cast<uid_t>(-1), *group) != 0)
        return tracefmt::MakeSystemError(
            fmt::format("cannot give directory {} the group {}", walked, *group));
    }
    at = std::move(next);
  }
  return {};
}

tracefmt::Status EnsureParentDirectory(const std::string& path, mode_t mode,
                                       std::optional<gid_t> group) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return {};
  return EnsureDirectory(path.substr(0, slash), mode, group);
}

std::string SnapshotPath(const std::string& shm_name) {
  return shm_name.starts_with("/dev/") ? shm_name : "/dev/shm/" + shm_name;
}

std::string AccountingLogPath(const std::string& log_dir) {
  return log_dir + "/accounting.log";
}

tracefmt::Status EnsureOutputDirectories(const DaemonOptions& options) {
  if (!options.capture_path.empty())
    if (tracefmt::Status st = EnsureParentDirectory(options.capture_path); !st)
      return InContext("raw capture", options.capture_path, st.error());
  if (!options.log_dir.empty())
    if (tracefmt::Status st = EnsureDirectory(options.log_dir); !st)
      return InContext("log directory", options.log_dir, st.error());
  if (!options.socket_path.empty()) {
    std::optional<gid_t> group;
    if (!options.socket_group.empty()) {
      auto gid = ResolveGroup(options.socket_group);
      if (!gid) return InContext("--socket-group", options.socket_group, gid.error());
      group = *gid;
    }
    // The group must be able to reach the socket: a directory made here is theirs to enter.
    if (tracefmt::Status st = EnsureParentDirectory(options.socket_path, 0750, group); !st)
      return InContext("socket", options.socket_path, st.error());
  }
  return {};
}

tracefmt::Result<PublisherEndpoints> AddPublishers(Daemon& daemon, boost::asio::io_context& io,
                                                   const DaemonOptions& options,
                                                   const PhysInfo& physinfo, Logger& log,
                                                   std::function<uint64_t()> realtime_ns) {
  using tracefmt::MakeError;
  PublisherEndpoints endpoints;

  // The raw capture is opened by the drain loop; only its directory is made here.
  if (tracefmt::Status st = EnsureOutputDirectories(options); !st) return st.error();

  if (!options.log_dir.empty()) {
    char hostname[256] = {};
    ::gethostname(hostname, sizeof hostname - 1);
    publish::AccountingLogConfig lc;
    lc.path = AccountingLogPath(options.log_dir);
    lc.cpu_khz = physinfo.cpu_khz;
    lc.host = hostname;
    lc.run = publish::RunStartRecord(realtime_ns());
    lc.warn = [&log](const std::string& message) { log.Warn("{}", message); };
    auto acct_log = publish::AccountingLog::Open(lc, realtime_ns);
    if (!acct_log) return InContext("accounting log", lc.path, acct_log.error());
    endpoints.accounting_log_path = lc.path;
    daemon.AddPublisher(std::make_unique<AccountingLogPublisher>(std::move(*acct_log)));
  }

  if (!options.shm_name.empty()) {
    publish::SnapshotWriterConfig sc;
    sc.path = SnapshotPath(options.shm_name);
    auto writer = publish::SnapshotWriter::Create(sc);
    if (!writer) return InContext("shared-memory snapshot", sc.path, writer.error());
    endpoints.snapshot_path = sc.path;
    daemon.AddPublisher(std::make_unique<SnapshotPublisher>(std::move(*writer)));
  }

  if (!options.socket_path.empty()) {
    publish::ApiServerConfig ac;
    ac.path = options.socket_path;
    if (!options.socket_group.empty()) {
      auto gid = ResolveGroup(options.socket_group);
      if (!gid) return InContext("--socket-group", options.socket_group, gid.error());
      ac.group = *gid;
    }
    auto server = publish::ApiServer::Start(io, ac);
    if (!server) return InContext("socket", ac.path, server.error());
    endpoints.socket_path = ac.path;
    log.Info("JSON API on {}", ac.path);
    daemon.AddPublisher(std::make_unique<ApiPublisher>(std::move(*server)));
  }

  if (options.metrics_port) {
    publish::MetricsServerConfig mc;
    mc.address = options.metrics_address;
    mc.port = *options.metrics_port;
    auto server = publish::MetricsServer::Start(io, mc);
    if (!server)
      return InContext("metrics endpoint", fmt::format("{}:{}", mc.address, mc.port),
                       server.error());
    endpoints.metrics_port = (*server)->port();
    log.Info("Prometheus metrics on http://{}:{}/metrics", mc.address, (*server)->port());
    daemon.AddPublisher(std::make_unique<MetricsPublisher>(std::move(*server)));
  }
  return endpoints;
}

}  // namespace xenbaked

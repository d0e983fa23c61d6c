#include "xenbaked/publishers.h"

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
        for (const tracefmt::AcctRecord& r :
             publish::IntervalRecords(w, v.realtime_ns, v.names, log_.stats(), v.health))
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
// closes every client and removes the socket file, which lets the loop's io_context run dry.
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

tracefmt::Status EnsureDirectory(const std::string& dir, mode_t mode, std::optional<gid_t> group) {
  if (dir.empty()) return {};
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return tracefmt::MakeError(tracefmt::ErrorCode::kInvalidArgument,
                               fmt::format("{} exists and is not a directory", dir));
  }
  if (errno != ENOENT)
    return tracefmt::MakeSystemError(fmt::format("cannot look at directory {}", dir));
  // Parents first ("a/b/c": "a", then "a/b"), each with the same mode.
  const size_t slash = dir.find_last_not_of('/') == std::string::npos
                           ? std::string::npos
                           : dir.rfind('/', dir.find_last_not_of('/'));
  if (slash != std::string::npos && slash > 0)
    if (tracefmt::Status st_parent = EnsureDirectory(dir.substr(0, slash), mode, group); !st_parent)
      return st_parent;
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST)
    return tracefmt::MakeSystemError(fmt::format("cannot create directory {}", dir));
  // mkdir's mode passes through the umask; the directory gets exactly `mode`.
  if (::chmod(dir.c_str(), mode) != 0)
    return tracefmt::MakeSystemError(fmt::format("cannot set the mode of directory {}", dir));
  if (group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0)
    return tracefmt::MakeSystemError(
        fmt::format("cannot give directory {} the group {}", dir, *group));
  return {};
}

tracefmt::Status EnsureParentDirectory(const std::string& path, mode_t mode,
                                       std::optional<gid_t> group) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return {};
  return EnsureDirectory(path.substr(0, slash), mode, group);
}

tracefmt::Result<PublisherEndpoints> AddPublishers(Daemon& daemon, boost::asio::io_context& io,
                                                   const DaemonOptions& options,
                                                   const PhysInfo& physinfo, Logger& log,
                                                   std::function<uint64_t()> realtime_ns) {
  using tracefmt::MakeError;
  auto in_context = [](std::string_view what, const std::string& path, const tracefmt::Error& e) {
    tracefmt::Error out = e;
    out.message = fmt::format("{} {}: {}", what, path, e.message);
    return out;
  };
  PublisherEndpoints endpoints;

  // The raw capture is opened by the drain loop; only its directory is made here.
  if (!options.capture_path.empty())
    if (tracefmt::Status st = EnsureParentDirectory(options.capture_path); !st)
      return in_context("raw capture", options.capture_path, st.error());

  if (!options.log_dir.empty()) {
    if (tracefmt::Status st = EnsureDirectory(options.log_dir); !st)
      return in_context("log directory", options.log_dir, st.error());
    char hostname[256] = {};
    ::gethostname(hostname, sizeof hostname - 1);
    publish::AccountingLogConfig lc;
    lc.path = options.log_dir + "/accounting.log";
    lc.cpu_khz = physinfo.cpu_khz;
    lc.host = hostname;
    lc.run = publish::RunStartRecord(realtime_ns());
    lc.warn = [&log](const std::string& message) { log.Warn("{}", message); };
    auto acct_log = publish::AccountingLog::Open(lc, realtime_ns);
    if (!acct_log) return in_context("accounting log", lc.path, acct_log.error());
    endpoints.accounting_log_path = lc.path;
    daemon.AddPublisher(std::make_unique<AccountingLogPublisher>(std::move(*acct_log)));
  }

  if (!options.shm_name.empty()) {
    publish::SnapshotWriterConfig sc;
    sc.path =
        options.shm_name.starts_with("/dev/") ? options.shm_name : "/dev/shm/" + options.shm_name;
    auto writer = publish::SnapshotWriter::Create(sc);
    if (!writer) return in_context("shared-memory snapshot", sc.path, writer.error());
    endpoints.snapshot_path = sc.path;
    daemon.AddPublisher(std::make_unique<SnapshotPublisher>(std::move(*writer)));
  }

  if (!options.socket_path.empty()) {
    publish::ApiServerConfig ac;
    ac.path = options.socket_path;
    if (!options.socket_group.empty()) {
      auto gid = ResolveGroup(options.socket_group);
      if (!gid) return in_context("--socket-group", options.socket_group, gid.error());
      ac.group = *gid;
    }
    // The group must be able to reach the socket: a directory made here is theirs to enter.
    if (tracefmt::Status st = EnsureParentDirectory(ac.path, 0750, ac.group); !st)
      return in_context("socket", ac.path, st.error());
    auto server = publish::ApiServer::Start(io, ac);
    if (!server) return in_context("socket", ac.path, server.error());
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
      return in_context("metrics endpoint", fmt::format("{}:{}", mc.address, mc.port),
                        server.error());
    endpoints.metrics_port = (*server)->port();
    log.Info("Prometheus metrics on http://{}:{}/metrics", mc.address, (*server)->port());
    daemon.AddPublisher(std::make_unique<MetricsPublisher>(std::move(*server)));
  }
  return endpoints;
}

}  // namespace xenbaked

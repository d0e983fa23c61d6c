// xenbaked/options.h — the limits of xenbaked's options and the checks that need more than the
// command line: options that are valid but would account nothing or expose more than intended
// (warnings the daemon logs at start), and the CPU mask against the host's CPUs (known only
// once the hypervisor answers). ParseOptions itself is declared in daemon.h.
//
//   DaemonOptions o = ParseOptions(argc, argv);            // bad values: OptionsExit{2}
//   for (const std::string& w : OptionWarnings(o)) log.Warn("{}", w);
//   auto cpu_warnings = CheckCpuMask(o.cpu_mask, physinfo);  // error: no CPU of the mask exists
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tracefmt/result.h"
#include "xenbaked/daemon.h"
#include "xenbaked/hypervisor.h"

namespace xenbaked::limits {
// Window lengths: a week at most (length × 1e9 must not wrap; longer windows are a report's job).
inline constexpr uint64_t kMaxWindowSeconds = 7 * 24 * 3600;
inline constexpr size_t kMaxWindowLengths = 8;
// --duration: ten years at most (anything longer is "until a signal", which is 0).
inline constexpr double kMaxDurationSeconds = 10.0 * 365 * 24 * 3600;
// --sim-speed: how far the simulator can run ahead of the wall clock. Each millisecond of wall
// time it simulates speed milliseconds under the host's lock; past what it can simulate in a
// millisecond it never lets go of the lock, and the daemon (drain, signals, --duration) starves.
inline constexpr double kMaxSimSpeed = 100;
// --sim-churn: domain creations per simulated second.
inline constexpr double kMaxSimChurnHz = 1000;
// A Unix socket's path must fit sockaddr_un.sun_path (108 bytes with its terminating NUL).
inline constexpr size_t kMaxSocketPathBytes = 107;
}  // namespace xenbaked::limits

namespace xenbaked {

// Valid options that probably do not do what was meant: the daemon logs each as a warning at
// start.
std::vector<std::string> OptionWarnings(const DaemonOptions& options);

// Valid, safe choices whose consequence a person may not expect: logged as notices at start.
// `running_as_root`: whether the daemon runs as root (a socket without --socket-group is then
// root's alone — the packaged configuration's default, safe, so not a warning).
std::vector<std::string> OptionNotices(const DaemonOptions& options, bool running_as_root);

// --cpu-mask against the host: an error when no CPU of the mask exists (nothing would be traced),
// warnings naming the CPUs of the mask the host does not have.
tracefmt::Result<std::vector<std::string>> CheckCpuMask(const std::string& cpu_mask,
                                                        const PhysInfo& host);

}  // namespace xenbaked

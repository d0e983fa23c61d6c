// xenbaked/live_table.h — the table xenbaked draws on its terminal: the newest window per domain
// under xenbake-top's column names, cut to the terminal's size, and the terminal's hang-up.
//
// A hang-up (window closed, ssh session lost) sends SIGHUP, which otherwise asks for a log
// reopen. Linux replaces a hung-up terminal's file operations: poll() then reports POLLHUP and
// write() fails with EIO. So a SIGHUP while the table's terminal polls POLLHUP, or a failed
// write of the table, means the terminal is gone and the daemon ends as on SIGTERM; a SIGHUP
// with the terminal still there (kill -HUP for log rotation) reopens the logs as under systemd.
#pragma once

#include <cstdio>
#include <string>
#include <unordered_map>

#include "xenbaked/accounting.h"
#include "xenbaked/health.h"
#include "xenbaked/reconcile.h"
#include "xenbaked/windows.h"

namespace xenbaked {

struct LiveTableSize {
  size_t columns = 80;
  size_t rows = 24;
};

// The table for a terminal of `size`: a status line, then one row per domain (busiest first) as
// xenbake-top names them: ID NAME VCPU ? CPU% WAIT BLK% DISP/s LOST, every line at most
// size.columns wide, at most size.rows lines. With `reconcile`, a line with the host's last
// reconciliation against Xen's cpu_time.
std::string RenderLiveTable(const Window* window, const AccountingSnapshot& totals,
                            const DaemonHealth& health,
                            const std::unordered_map<uint32_t, std::string>& names,
                            LiveTableSize size, const ReconcileReport* reconcile = nullptr);

// The terminal the live table is drawn on.
class LiveTerminal {
 public:
  explicit LiveTerminal(std::FILE* out) : out_(out) {}
  // Its size now (80x24 when the terminal does not say).
  LiveTableSize Size() const;
  // Redraws in place; false when the write failed (the terminal is gone).
  bool Draw(const std::string& table);
  // True once the terminal has hung up.
  bool HungUp() const;

 private:
  std::FILE* out_;
};

}  // namespace xenbaked

// xenbaked/signals.h — SIGTERM/SIGINT/SIGHUP delivered on the event loop (asio::signal_set), so no
// handler touches daemon state from signal context and there is no global flag.
//
//   SignalHandlers signals(io, /*on_stop=*/[&](int sig) { daemon.Stop(); },
//                          /*on_reload=*/[&] { publishers.Reopen(); });
#pragma once

#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace xenbaked {

class SignalHandlers {
 public:
  // `on_stop` for SIGTERM and SIGINT (with the signal number), `on_reload` for SIGHUP. Both run on
  // the loop thread. The handlers stay installed until this object is destroyed.
  SignalHandlers(boost::asio::io_context& io, std::function<void(int)> on_stop,
                 std::function<void()> on_reload);
  ~SignalHandlers();
  // Stops listening (so io.run() can return).
  void Cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xenbaked

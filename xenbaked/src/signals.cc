#include "xenbaked/signals.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>

namespace xenbaked {

struct SignalHandlers::Impl {
  Impl(boost::asio::io_context& io, std::function<void(int)> stop, std::function<void()> reload)
      : set(io, SIGTERM, SIGINT, SIGHUP), on_stop(std::move(stop)), on_reload(std::move(reload)) {}

  void Wait() {
    set.async_wait(
        [this, alive = std::weak_ptr<bool>(alive)](const boost::system::error_code& ec, int sig) {
          if (ec || alive.expired()) return;
          if (sig == SIGHUP) {
            if (on_reload) on_reload();
          } else if (on_stop) {
            on_stop(sig);
          }
          if (!cancelled) Wait();
        });
  }

  boost::asio::signal_set set;
  std::function<void(int)> on_stop;
  std::function<void()> on_reload;
  bool cancelled = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

SignalHandlers::SignalHandlers(boost::asio::io_context& io, std::function<void(int)> on_stop,
                               std::function<void()> on_reload)
    : impl_(std::make_unique<Impl>(io, std::move(on_stop), std::move(on_reload))) {
  impl_->Wait();
}

SignalHandlers::~SignalHandlers() {
  Cancel();
}

void SignalHandlers::Cancel() {
  if (impl_->cancelled) return;
  impl_->cancelled = true;
  boost::system::error_code ignored;
  impl_->set.cancel(ignored);
  impl_->set.clear(ignored);
}

}  // namespace xenbaked

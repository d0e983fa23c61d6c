// xenbaked/publisher.h — what the daemon calls on each of its outputs.
//
// Every publication interval the daemon hands each publisher the publication layer's
// publish::PublishView (totals, window history, health, names), on the loop thread. Publishers
// must not block for long (a slow client is the publisher's to queue or drop, never the loop's to
// wait for). SIGHUP calls Reopen (rotate/reopen files); a destroyed domain's final totals go to
// OnFinal; Close at exit gets the view after the final drain.
//
//   class MyPublisher : public Publisher { ... };
//   daemon.AddPublisher(std::make_unique<MyPublisher>(...));
#pragma once

#include <string_view>

#include "tracefmt/result.h"
#include "xenbaked/accounting.h"
#include "xenbaked/publish/publish_view.h"

namespace xenbaked {

class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual std::string_view name() const = 0;
  virtual tracefmt::Status Publish(const publish::PublishView& view) = 0;
  virtual void OnFinal(const DomainTotals& /*domain*/, uint64_t /*realtime_ns*/) {}
  virtual tracefmt::Status Reopen() { return {}; }
  // After the final drain, with the final figures.
  virtual tracefmt::Status Close(const publish::PublishView& /*final_view*/) { return {}; }
};

}  // namespace xenbaked

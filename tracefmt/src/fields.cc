#include "tracefmt/fields.h"

#include "tracefmt/events.h"

namespace tracefmt {

namespace {

// Argument names for PV_HYPERCALL_V2, in recording order.
constexpr std::array<std::string_view, 6> kHypercallArgNames = {"arg0", "arg1", "arg2",
                                                                "arg3", "arg4", "arg5"};

bool AddSchedulingFields(const Record& rec, RecordFields& f) {
  if (auto v = AsRunstateChange(rec)) {
    f.Add("domain", v->domain);
    f.Add("vcpu", v->vcpu);
    f.Add("old", static_cast<uint64_t>(v->old_state), RunstateName(v->old_state));
    f.Add("new", static_cast<uint64_t>(v->new_state), RunstateName(v->new_state));
  } else if (auto p = AsSwitchInfPrev(rec)) {
    f.Add("domain", p->domain);
    f.Add("unit", p->unit);
    f.Add("runtime_ns", p->runtime_ns);
  } else if (auto n = AsSwitchInfNext(rec)) {
    f.Add("domain", n->domain);
    f.Add("unit", n->unit);
    f.Add("waited_ns", n->waited_ns);
    f.Add("next_time_ns", n->next_time_ns, n->next_time_ns == ev::kNoTimeLimit ? "none" : "");
  } else if (auto s = AsSwitch(rec)) {
    f.Add("prev_domain", s->prev_domain);
    f.Add("prev_unit", s->prev_unit);
    f.Add("next_domain", s->next_domain);
    f.Add("next_unit", s->next_unit);
  } else if (auto ve = AsVcpuEvent(rec)) {
    f.Add("domain", ve->domain);
    f.Add("vcpu", ve->vcpu);
  } else if (auto d = AsDomainEvent(rec)) {
    f.Add("domain", d->domain);
  } else if (auto c = AsContinueRunning(rec)) {
    f.Add("domain", c->domain);
    f.Add("vcpu", c->vcpu);
  } else {
    return false;
  }
  return true;
}

bool AddGeneralFields(const Record& rec, RecordFields& f) {
  if (auto l = AsLostRecords(rec)) {
    f.Add("count", l->count);
    f.Add("domain", l->domain);
    f.Add("vcpu", l->vcpu);
    f.Add("first_tsc", l->first_tsc);
  } else if (auto c = AsCpuChange(rec)) {
    f.Add("cpu", c->cpu);
    f.Add("window_bytes", c->window_bytes);
  } else if (auto h = AsPvHypercallV2(rec)) {
    f.Add("op", h->op);
    for (uint8_t i = 0; i < h->nargs; ++i) f.Add(kHypercallArgNames[i], h->args[i]);
  } else {
    return false;
  }
  return true;
}

}  // namespace

RecordFields DecodeFields(const Record& rec) {
  RecordFields fields;
  if (!AddSchedulingFields(rec, fields)) AddGeneralFields(rec, fields);
  return fields;
}

}  // namespace tracefmt

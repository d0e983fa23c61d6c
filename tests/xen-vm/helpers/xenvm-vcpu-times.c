/* xenvm-vcpu-times — every vCPU's running time as Xen keeps it, in nanoseconds.
 *
 * The real-Xen tier's oracle for xenbaked's per-vCPU running time: `xl vcpu-list` prints only
 * tenths of a second, so the payload runs this at each point of interest instead. It uses
 * libxenctrl alone (XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_getvcpuinfo), none of xenbaked's code.
 *
 * Output, one line per online vCPU after a header line with the read's instants:
 *   # realtime_ns R0 R1        CLOCK_REALTIME before the first and after the last query
 *   DOMID VCPU CPU_TIME_NS
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <xenctrl.h>

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(void) {
  enum { kBatch = 1024 };
  static xc_domaininfo_t info[kBatch];
  static char lines[kBatch * 8][64];
  size_t nlines = 0;
  xc_interface *xch = xc_interface_open(NULL, NULL, 0);
  if (xch == NULL) {
    perror("xc_interface_open");
    return 1;
  }
  const uint64_t before = realtime_ns();
  const int n = xc_domain_getinfolist(xch, 0, kBatch, info);
  if (n < 0) {
    perror("xc_domain_getinfolist");
    return 1;
  }
  for (int i = 0; i < n; ++i) {
    if (info[i].flags & XEN_DOMINF_dying) continue;
    if (info[i].max_vcpu_id == XEN_INVALID_MAX_VCPU_ID) continue;
    for (uint32_t v = 0; v <= info[i].max_vcpu_id; ++v) {
      xc_vcpuinfo_t vi;
      memset(&vi, 0, sizeof vi);
      if (xc_vcpu_getinfo(xch, info[i].domain, v, &vi) != 0) break;
      if (!vi.online || nlines == sizeof lines / sizeof lines[0]) continue;
      snprintf(lines[nlines++], sizeof lines[0], "%u %u %" PRIu64, (unsigned)info[i].domain, v,
               (uint64_t)vi.cpu_time);
    }
  }
  const uint64_t after = realtime_ns();
  printf("# realtime_ns %" PRIu64 " %" PRIu64 "\n", before, after);
  for (size_t i = 0; i < nlines; ++i) puts(lines[i]);
  xc_interface_close(xch);
  return 0;
}

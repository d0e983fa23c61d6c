#!/usr/bin/env bash
# Unpacks Debian's xen-utils-4.17 (xentrace) and xen-utils-common (xenalyze) into a cache folder
# without installing them, and prints the folder. Used by tests and benchmarks that compare with
# or drive the real tools. XENBAKED_XEN_TOOLS overrides the folder.
set -euo pipefail
dir="${XENBAKED_XEN_TOOLS:-/var/cache/xenbaked/xen-tools}"
if [ ! -x "$dir/usr/bin/xenalyze" ] || [ ! -x "$dir/usr/lib/xen-4.17/bin/xentrace" ]; then
  mkdir -p "$dir/debs"
  (cd "$dir/debs" && apt-get download xen-utils-4.17 xen-utils-common >/dev/null)
  for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir"; done
fi
echo "$dir"

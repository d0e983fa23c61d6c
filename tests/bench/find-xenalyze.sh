# Sourced by benchmark scripts: find_xenalyze prints the path of a xenalyze binary, or nothing.
# Order: $XENALYZE, scripts/fetch-xen-tools.sh's folder ($XENBAKED_XEN_TOOLS or its default),
# /usr/bin/xenalyze, then Debian's xen-utils-common unpacked (never installed)
# into ${XDG_CACHE_HOME:-$HOME/.cache}/xenbaked/xen-utils-common, downloading it once.
find_xenalyze() {
  if [[ -n ${XENALYZE:-} ]]; then echo "$XENALYZE"; return; fi
  local tools=${XENBAKED_XEN_TOOLS:-/var/cache/xenbaked/xen-tools}
  if [[ -x $tools/usr/bin/xenalyze ]]; then echo "$tools/usr/bin/xenalyze"; return; fi
  if [[ -x /usr/bin/xenalyze ]]; then echo /usr/bin/xenalyze; return; fi
  local cache=${XDG_CACHE_HOME:-$HOME/.cache}/xenbaked
  local unpacked=$cache/xen-utils-common/usr/bin/xenalyze
  if [[ ! -x $unpacked ]]; then
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$cache"
    (cd "$tmp" && apt-get download xen-utils-common >/dev/null 2>&1 &&
      dpkg-deb -x xen-utils-common_*.deb "$cache/xen-utils-common") || true
    rm -rf "$tmp"
  fi
  if [[ -x $unpacked ]]; then echo "$unpacked"; fi
}

#!/bin/bash
# install-deps.sh - install the Debian 12 packages vmlab needs, only those missing.
# Usage: scripts/install-deps.sh [build|test|report|all]   (default: all)
#
# Each target has REQUIRED packages (without them it cannot work: the script stops with the
# command that installs them) and OPTIONAL ones (without them some tests say SKIPPED and some
# report rows say "not measured: ... (apt-get install ...)"). As root, everything missing is
# installed; as another user nothing is, and only a missing required package is an error.
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libc6-dev linux-libc-dev libzydis-dev libcapstone-dev
            libcmocka-dev)
# test: second compiler and fuzzers, the nested-KVM guest, jq and script for the CLI tests
test_pkgs=(clang libclang-rt-14-dev qemu-system-x86 busybox-static cpio xz-utils zstd kmod jq
           bsdutils)
report_required=(gnuplot-nox)
report_optional=(qemu-user valgrind jq) # peers of the compute comparison; JSON check

case "${1:-all}" in
  build) required=("${build_pkgs[@]}"); optional=() ;;
  test) required=("${build_pkgs[@]}"); optional=("${test_pkgs[@]}") ;;
  report) required=("${build_pkgs[@]}" "${report_required[@]}"); optional=("${report_optional[@]}") ;;
  all) required=("${build_pkgs[@]}" "${report_required[@]}")
       optional=("${test_pkgs[@]}" "${report_optional[@]}") ;;
  *) echo "usage: $0 [build|test|report|all]" >&2; exit 64 ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing_of() { local p; for p in "$@"; do installed "$p" || echo "$p"; done | sort -u; }

mapfile -t miss_req < <(missing_of "${required[@]}")
mapfile -t miss_opt < <(missing_of "${optional[@]+"${optional[@]}"}")
if [ ${#miss_req[@]} -eq 0 ] && [ ${#miss_opt[@]} -eq 0 ]; then
  echo "install-deps: all $(( ${#required[@]} + ${#optional[@]} )) packages present" >&2
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  if [ ${#miss_opt[@]} -gt 0 ]; then
    echo "install-deps: optional, not installed: ${miss_opt[*]} (what needs them is skipped or" \
         "reported as not measured; to add them: sudo apt-get install ${miss_opt[*]})" >&2
  fi
  if [ ${#miss_req[@]} -gt 0 ]; then
    echo "install-deps: REQUIRED, not installed: ${miss_req[*]}" >&2
    echo "install-deps: as root, run: apt-get install ${miss_req[*]}  (or: sudo $0 ${1:-all})" >&2
    exit 1
  fi
  exit 0
fi

want=("${miss_req[@]}" "${miss_opt[@]}")
echo "install-deps: installing: ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "install-deps: apt-get update failed; trying with the current lists" >&2
# An optional package that cannot be installed must not stop the rest.
apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null || {
  echo "install-deps: bulk install failed; trying one by one" >&2
  for p in "${want[@]}"; do
    apt-get install -y -q --no-install-recommends "$p" >/dev/null || echo "install-deps: could not install $p" >&2
  done
}
mapfile -t still < <(missing_of "${required[@]}")
if [ ${#still[@]} -gt 0 ]; then
  echo "install-deps: REQUIRED packages could not be installed: ${still[*]}" \
       "(apt-get install ${still[*]})" >&2
  exit 1
fi
mapfile -t still < <(missing_of "${optional[@]+"${optional[@]}"}")
[ ${#still[@]} -eq 0 ] || echo "install-deps: optional, still missing: ${still[*]}" >&2
echo "install-deps: done" >&2

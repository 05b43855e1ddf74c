#!/bin/bash
# install-deps.sh - install the Debian 12 packages vmlab needs, only those missing.
# Usage: scripts/install-deps.sh [build|test|report|all]   (default: all)
# Runs apt-get as root; as another user it only reports what is missing.
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libc6-dev linux-libc-dev libzydis-dev libcapstone-dev
            libcmocka-dev)
test_pkgs=(clang libclang-rt-14-dev qemu-system-x86 busybox-static cpio xz-utils zstd kmod)
report_pkgs=(gnuplot-nox qemu-user valgrind)

case "${1:-all}" in
  build) want=("${build_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  report) want=("${build_pkgs[@]}" "${report_pkgs[@]}") ;;
  all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${report_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|report|all]" >&2; exit 64 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present" >&2
  exit 0
fi
echo "install-deps: missing: ${missing[*]}" >&2
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: not root: install them with apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Optional packages (qemu, valgrind ...) must not make the whole install fail: the tests and
# benchmarks that need them report SKIPPED / "not measured" with the reason.
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || {
  echo "install-deps: bulk install failed; trying one by one" >&2
  for p in "${missing[@]}"; do
    apt-get install -y -q --no-install-recommends "$p" >/dev/null || echo "install-deps: could not install $p" >&2
  done
}
for p in "${build_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
    echo "install-deps: required package $p is not installed" >&2; exit 1; }
done
echo "install-deps: done" >&2

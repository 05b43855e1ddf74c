#!/bin/bash
# nested-kvm.sh - run vmlab's vtx backend (or any KVM program) for real inside a QEMU guest
# under software emulation (TCG). `-cpu max` exposes AMD SVM to that guest, so a stock Debian
# kernel loads kvm_amd and has a real /dev/kvm there, even on hosts without one (or, like a
# PVM host, with a /dev/kvm that is not VT-x/AMD-V). Every timing printed from inside is
# EMULATED (TCG) and must never be reported as a hardware number.
#
#   nested-kvm.sh BUILD_DIR                     the guest conformance suite on vtx (ctest
#                                               nested_kvm.conformance)
#   nested-kvm.sh BUILD_DIR --guest G.elf [--backend B] [--timeout S]
#                                               run one guest there, show its console output
#                                               and exit with vmlab's status for it
#   nested-kvm.sh BUILD_DIR --exec 'CMD' [--add PATH]...
#                                               copy PATHs (files or folders; executables get
#                                               their shared libraries) to /extra there, run
#                                               CMD (busybox sh, in /extra) and exit with its
#                                               status; vmlab is /vmlab/vmlab, guests /guests
#
# Needs (Debian 12): qemu-system-x86 busybox-static cpio (installed by scripts/install-deps.sh).
# The kernel .deb is downloaded with apt-get and unpacked into a cache (never installed).
# Exit status: the run's (0 pass), 77 skipped (qemu or the kernel package unavailable),
# 124 QEMU timed out.
set -u
usage() { sed -n '2,/^# Needs/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
[ $# -ge 1 ] || usage
build=$(cd "$1" && pwd) || usage
shift
here=$(cd "$(dirname "$0")" && pwd)
work=${VMLAB_NESTED_WORK:-$here/work}
timeout_s=${VMLAB_NESTED_TIMEOUT:-600}
job="" adds=() backend=vtx guest_timeout=""
while [ $# -gt 0 ]; do
  case "$1" in
    --guest) g=$(readlink -f "${2:?}") || usage; [ -f "$g" ] || { echo "nested-kvm: $2: no such guest" >&2; exit 64; }
             adds+=("$g"); guest=$(basename "$g"); shift ;;
    --backend) backend=${2:?}; shift ;;
    --timeout) guest_timeout=${2:?}; shift ;;
    --exec) job=${2:?}; shift ;;
    --add) [ -e "$2" ] || { echo "nested-kvm: $2: not found" >&2; exit 64; }; adds+=("$(readlink -f "$2")"); shift ;;
    *) usage ;;
  esac
  shift
done
if [ -n "${guest:-}" ]; then
  job="/vmlab/vmlab run --backend $backend ${guest_timeout:+--timeout $guest_timeout} /extra/$guest"
fi
command -v qemu-system-x86_64 >/dev/null || { echo "nested-kvm: SKIPPED: qemu-system-x86_64 not installed (scripts/install-deps.sh test)"; exit 77; }
[ -x /bin/busybox ] || { echo "nested-kvm: SKIPPED: busybox-static not installed"; exit 77; }
[ -x "$build/tools/vmlab/vmlab" ] || { echo "nested-kvm: $build/tools/vmlab/vmlab missing: build first"; exit 1; }
mkdir -p "$work/debs" "$work/kroot" "$work/tmp"
# apt writes temporary files; a student account may not own /tmp's sticky-less copy
export TMPDIR="$work/tmp"
if [ ! -d "$work/kroot/boot" ]; then
  find_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
  pkg=$(find_pkg)
  if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1; pkg=$(find_pkg); fi
  [ -n "$pkg" ] || { echo "nested-kvm: SKIPPED: no linux-image package known to apt (run apt-get update)"; exit 77; }
  (cd "$work/debs" && apt-get download "$pkg" >/dev/null 2>&1) || { echo "nested-kvm: SKIPPED: cannot download $pkg"; exit 77; }
  dpkg-deb -x "$work"/debs/"$pkg"_*.deb "$work/kroot" || exit 1
fi
kv=$(ls "$work/kroot/lib/modules" | head -n1)
kmod=$work/kroot/lib/modules/$kv/kernel
# One initramfs per run (several may run at once: e.g. ctest and a lab's grader).
ir=$(mktemp -d "$work/initramfs.XXXXXX")
unset TMPDIR
trap 'rm -rf "$ir" "$ir.cpio.gz"' EXIT
mkdir -p "$ir"/{bin,proc,sys,dev,tmp,lib/modules,lib64,vmlab,guests,extra}
cp /bin/busybox "$ir/bin/"
cp "$here/init.sh" "$ir/init"; chmod +x "$ir/init"
cp "$build/tools/vmlab/vmlab" "$ir/vmlab/"
# The shared libraries of a dynamically linked executable (Zydis, Capstone, libc ...) and the
# dynamic loader.
copy_libs() {
  ldd "$1" 2>/dev/null | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
    [ -f "$lib" ] && cp -L "$lib" "$ir/lib64/"
  done
}
copy_libs "$build/tools/vmlab/vmlab"
[ -e "$ir/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$ir/lib64/"
cp "$build"/guest_tests/*.elf "$build/guest_tests/manifest.txt" "$ir/guests/"
for a in "${adds[@]}"; do
  cp -rL "$a" "$ir/extra/"
  find "$a" -type f -perm -u+x 2>/dev/null | while read -r x; do copy_libs "$x"; done
done
[ -n "$job" ] && printf '%s\n' "$job" >"$ir/job.sh"
# kvm-amd needs kvm and ccp, kvm needs irqbypass (modinfo -F depends); decompress as needed
for f in virt/lib/irqbypass drivers/crypto/ccp/ccp arch/x86/kvm/kvm arch/x86/kvm/kvm-amd arch/x86/kvm/kvm-intel; do
  src=$(ls "$kmod/$f".ko* 2>/dev/null | head -n1); [ -n "$src" ] || continue
  dst=$ir/lib/modules/$(basename "$f").ko
  case "$src" in *.xz) xz -dc "$src" >"$dst";; *.zst) zstd -dcq "$src" >"$dst";; *.gz) gzip -dc "$src" >"$dst";; *) cp "$src" "$dst";; esac
done
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$ir.cpio.gz"
log=$ir.log
echo "nested-kvm: kernel $kv, initramfs $(stat -c %s "$ir.cpio.gz") bytes; booting QEMU (TCG, -cpu max)${job:+; job: $job}"
t0=$(date +%s)
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m 2048 -smp 1 \
  -nographic -no-reboot -nic none -device isa-debug-exit,iobase=0xf4,iosize=4 \
  -kernel "$work/kroot/boot/vmlinuz-$kv" -initrd "$ir.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet" </dev/null 2>&1 | tr -d '\r' >"$log"
qrc=${PIPESTATUS[0]}
cp "$log" "$work/boot.log"
rm -f "$log"
echo "nested-kvm: qemu exit status $qrc (1 = pass, 3 = fail, 124 = timeout) after $(( $(date +%s) - t0 )) s wall (EMULATED guest)"
[ $qrc = 124 ] && { echo "nested-kvm: QEMU timed out after $timeout_s s (VMLAB_NESTED_TIMEOUT)"; exit 124; }
rc=$(sed -n 's/^NESTED-RC=\([0-9]*\)$/\1/p' "$work/boot.log" | tail -n1)
if [ -n "$job" ]; then
  # The job's own output, as it printed it.
  sed -n '/^NESTED-JOB-BEGIN$/,/^NESTED-JOB-END$/p' "$work/boot.log" | sed '1d;$d'
  grep '^NESTED: EMULATED' "$work/boot.log"
  [ -n "$rc" ] || { echo "nested-kvm: the run did not finish (see $work/boot.log)"; exit 1; }
  exit "$rc"
fi
# The matrix and the nested run's own lines.
sed -n '/^NESTED/p; /^test  /,/runs: /p; /^vtx /,/^$/p' "$work/boot.log"
[ "$qrc" = 1 ] && grep -q 'NESTED-KVM PASS' "$work/boot.log"

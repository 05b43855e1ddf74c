#!/bin/bash
# nested-kvm.sh BUILD_DIR - run vmlab's guest conformance suite on the vtx backend inside a
# QEMU guest under software emulation (TCG). `-cpu max` exposes AMD SVM to that guest, so a
# stock Debian kernel loads kvm_amd and has a real /dev/kvm there, even on hosts without one.
# Every timing printed from inside is EMULATED (TCG) and must never be reported as a hardware
# number.
#
# Needs (Debian 12): qemu-system-x86 busybox-static cpio (installed by scripts/install-deps.sh).
# The kernel .deb is downloaded with apt-get and unpacked into a cache (never installed).
# Exit status: 0 pass, 1 fail, 77 skipped (qemu or the kernel package unavailable).
set -u
build=$(cd "${1:?usage: nested-kvm.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=${VMLAB_NESTED_WORK:-$here/work}
timeout_s=${VMLAB_NESTED_TIMEOUT:-600}
command -v qemu-system-x86_64 >/dev/null || { echo "nested-kvm: SKIPPED: qemu-system-x86_64 not installed"; exit 77; }
[ -x /bin/busybox ] || { echo "nested-kvm: SKIPPED: busybox-static not installed"; exit 77; }
[ -x "$build/tools/vmlab/vmlab" ] || { echo "nested-kvm: $build/tools/vmlab/vmlab missing: build first"; exit 1; }
mkdir -p "$work/debs" "$work/kroot"
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
ir=$work/initramfs
rm -rf "$ir"; mkdir -p "$ir"/{bin,proc,sys,dev,tmp,lib/modules,lib64,vmlab,guests}
cp /bin/busybox "$ir/bin/"
cp "$here/init.sh" "$ir/init"; chmod +x "$ir/init"
cp "$build/tools/vmlab/vmlab" "$ir/vmlab/"
# The shared libraries vmlab needs (Zydis, Zycore, Capstone, libc) and the dynamic loader.
ldd "$build/tools/vmlab/vmlab" | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
  [ -f "$lib" ] && cp -L "$lib" "$ir/lib64/"
done
[ -e "$ir/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$ir/lib64/"
cp "$build"/guest_tests/*.elf "$build/guest_tests/manifest.txt" "$ir/guests/"
# kvm-amd needs kvm and ccp, kvm needs irqbypass (modinfo -F depends); decompress as needed
for f in virt/lib/irqbypass drivers/crypto/ccp/ccp arch/x86/kvm/kvm arch/x86/kvm/kvm-amd arch/x86/kvm/kvm-intel; do
  src=$(ls "$kmod/$f".ko* 2>/dev/null | head -n1); [ -n "$src" ] || continue
  dst=$ir/lib/modules/$(basename "$f").ko
  case "$src" in *.xz) xz -dc "$src" >"$dst";; *.zst) zstd -dcq "$src" >"$dst";; *.gz) gzip -dc "$src" >"$dst";; *) cp "$src" "$dst";; esac
done
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initramfs.cpio.gz"
echo "nested-kvm: kernel $kv, initramfs $(stat -c %s "$work/initramfs.cpio.gz") bytes; booting QEMU (TCG, -cpu max)"
t0=$(date +%s)
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m 2048 -smp 1 \
  -nographic -no-reboot -nic none -device isa-debug-exit,iobase=0xf4,iosize=4 \
  -kernel "$work/kroot/boot/vmlinuz-$kv" -initrd "$work/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet" </dev/null >"$work/boot.log" 2>&1
rc=$?
echo "nested-kvm: qemu exit status $rc (1 = pass, 3 = fail, 124 = timeout) after $(( $(date +%s) - t0 )) s wall (EMULATED guest)"
# Print the matrix and the nested run's own lines (strip the kernel console's carriage returns).
tr -d '\r' < "$work/boot.log" | sed -n '/^NESTED/p; /^test  /,/runs: /p; /^vtx /,/^$/p'
[ $rc = 1 ] && grep -q 'NESTED-KVM PASS' "$work/boot.log"

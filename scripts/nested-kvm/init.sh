#!/bin/busybox sh
# /init of the nested-KVM initramfs (runs inside the QEMU TCG guest): load KVM, then run
# /job.sh if nested-kvm.sh put one there (--guest / --exec), else vmlab's guest conformance
# suite on the vtx backend; report through isa-debug-exit and a NESTED-RC line.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "NESTED: /init at uptime $(cut -d' ' -f1 /proc/uptime) s"
M=/lib/modules
for m in irqbypass ccp kvm; do [ -f $M/$m.ko ] && { insmod $M/$m.ko || echo "NESTED: insmod $m failed"; }; done
if grep -qw svm /proc/cpuinfo; then insmod $M/kvm-amd.ko || echo "NESTED: insmod kvm-amd failed"
else insmod $M/kvm-intel.ko || echo "NESTED: insmod kvm-intel failed"; fi
rc=99
if [ -c /dev/kvm ]; then
  echo "NESTED: /dev/kvm present ($(ls /sys/module | grep -E '^kvm_(amd|intel)$'))"
  export LD_LIBRARY_PATH=/lib64:/lib
  t0=$(cut -d' ' -f1 /proc/uptime)
  if [ -f /job.sh ]; then
    echo "NESTED-JOB-BEGIN"
    (cd /extra 2>/dev/null || cd /; sh /job.sh); rc=$?
    echo "NESTED-JOB-END"
  else
    /vmlab/vmlab backends
    # TCG emulates every instruction, and the host may be busy: three times each guest's budget
    /vmlab/vmlab conformance --backend vtx --guests /guests --timeout-scale 3; rc=$?
    echo "NESTED: conformance rc=$rc"
  fi
  echo "NESTED: EMULATED timing: guest uptime $t0 -> $(cut -d' ' -f1 /proc/uptime) s"
else
  echo "NESTED: /dev/kvm missing"; dmesg | tail -n 20
fi
echo "NESTED-RC=$rc"
[ $rc = 0 ] && echo "NESTED-KVM PASS" || echo "NESTED-KVM FAIL (rc=$rc)"
# isa-debug-exit: QEMU exits with (v << 1) | 1: 1 = pass, 3 = fail
[ $rc = 0 ] && v='\000' || v='\001'
printf "$v" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f

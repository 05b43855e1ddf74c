# shellcheck shell=bash
# lib.sh - helpers for the commands in labs/*/tests (sourced by labs/grade.sh for each test).
# Variables set by the grader: VMLAB, BUILD, STUDENT, LAB_DIR, WORK, HIDDEN (labs/README.md).
# Each helper returns 0 (pass), 77 (not gradable on this host) or another status (fail), and
# prints one line saying why it failed: the grader shows the last line of a failed test.

# check_guest BACKEND GUEST: the guest (a name in $BUILD/guest_tests, or a path to an .elf)
# must be judged "ok" by `vmlab check` on BACKEND: it passes as its GUEST_EXPECT records say
# (ending and console output). An expected failure (xfail) does not earn the points.
check_guest() {
  local backend=$1 elf=$2 out rc
  [[ "$elf" == */* ]] || elf=$BUILD/guest_tests/$elf.elf
  out=$("$VMLAB" check --backend "$backend" "$elf" 2>&1)
  rc=$?
  echo "$out"
  [ $rc = 77 ] && return 77
  [[ "$out" == *": ok ("* ]] && return 0
  return 1
}

# build_guest OUT.elf SOURCE...: compile a guest with the lab build's vmlab-guest-cc.
build_guest() {
  local out=$1
  shift
  "$BUILD/guest_tests/vmlab-guest-cc" -o "$out" "$@" || { echo "guest does not compile: $*"; return 1; }
}

# backend_available BACKEND: 0 if vmlab can run guests on it here, 77 otherwise.
backend_available() {
  "$VMLAB" backends 2>/dev/null | grep -Eq "^$1 +available" && return 0
  echo "backend $1 is not available on this host: $("$VMLAB" backends 2>/dev/null | grep -E "^$1 " | head -n1)"
  return 77
}

# kvm_usable: 0 if /dev/kvm can be opened read-write here.
kvm_usable() {
  [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

# median N1 N2 ...: the median of numbers (for timing tests).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

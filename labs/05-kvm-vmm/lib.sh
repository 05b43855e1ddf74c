# shellcheck shell=bash
# Lab 5 helpers (sourced by labs/grade.sh after labs/lib.sh).
#
# The student's VMM runs where KVM is real enough: on this host's /dev/kvm if it can be
# opened, else inside the nested QEMU/kvm_amd guest (scripts/nested-kvm), one boot for all the
# runs of a grading (the results are cached by the VMM binary's hash). VMLAB_LAB_NESTED=1
# forces the nested run. Neither possible: the test is not gradable here (77).

LAB5_GUESTS="hello exit_code io_ports hlt_cli mov_cr mov_cr_faults ud_nohandler sgdt"

lab5_build() { # -> $WORK/vmm
  cc -O2 -Wall -Wextra -o "$WORK/vmm" "$STUDENT/vmm.c" || { echo "vmm.c does not compile"; return 1; }
}

# Fill $1 (a cache folder) with <case>.out and <case>.rc for every case, in one nested boot.
lab5_nested_fill() {
  local cache=$1 job
  job='cd /extra; for g in '"$LAB5_GUESTS"'; do echo "@@@ $g"; ./vmm /guests/$g.elf 2>&1; echo "@@@ rc $?"; done;'
  job+=' echo "@@@ bad_image"; ./vmm /extra/not-an-elf 2>&1; echo "@@@ rc $?";'
  job+=' echo "@@@ usage"; ./vmm 2>&1; echo "@@@ rc $?"'
  mkdir -p "$WORK/nested"
  cp "$WORK/vmm" "$WORK/nested/vmm"
  echo "this is not an ELF file" >"$WORK/nested/not-an-elf"
  VMLAB_NESTED_WORK=${VMLAB_NESTED_WORK:-$LAB_ROOT/scripts/nested-kvm/work} \
    "$LAB_ROOT/scripts/nested-kvm/nested-kvm.sh" "$BUILD" --add "$WORK/nested/vmm" \
    --add "$WORK/nested/not-an-elf" --exec "$job" >"$WORK/nested.log" 2>&1
  local rc=$?
  [ $rc = 77 ] && { tail -n 1 "$WORK/nested.log"; return 77; }
  grep -q '^@@@ rc' "$WORK/nested.log" || { tail -n 5 "$WORK/nested.log"; echo "the nested run failed"; return 1; }
  mkdir -p "$cache"
  awk -v dir="$cache" '
    /^@@@ rc / { print $3 > (dir "/" name ".rc"); close(dir "/" name ".rc"); name = ""; next }
    /^@@@ / { name = $2; printf "" > (dir "/" name ".out"); next }
    name != "" { print >> (dir "/" name ".out") }' "$WORK/nested.log"
}

# lab5_run CASE: run one case (a guest name, bad_image or usage); its output in $WORK/out,
# its exit status returned (or 77 / 1 when it cannot run).
lab5_run() {
  local case=$1
  lab5_build || return 1
  if kvm_usable && [ -z "${VMLAB_LAB_NESTED:-}" ]; then
    case $case in
      bad_image) echo "this is not an ELF file" >"$WORK/not-an-elf"; timeout 20 "$WORK/vmm" "$WORK/not-an-elf" >"$WORK/out" 2>&1 ;;
      usage) timeout 20 "$WORK/vmm" >"$WORK/out" 2>&1 ;;
      *) timeout 20 "$WORK/vmm" "$BUILD/guest_tests/$case.elf" >"$WORK/out" 2>&1 ;;
    esac
    return $?
  fi
  if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "no usable /dev/kvm here ($(ls -l /dev/kvm 2>&1 | cut -c1-60)) and no qemu-system-x86 for the nested run"
    return 77
  fi
  local cache
  cache="$BUILD/grade/lab5-nested/$(sha256sum "$WORK/vmm" | cut -c1-16)"
  if [ ! -f "$cache/usage.rc" ]; then
    lab5_nested_fill "$cache" || return $?
  fi
  [ -f "$cache/$case.rc" ] || { echo "the nested run did not run $case"; return 1; }
  cp "$cache/$case.out" "$WORK/out"
  echo "(ran in the nested kvm_amd guest)"
  return "$(cat "$cache/$case.rc")"
}

# vmm_case CASE STATUS [LINE]: the VMM ends CASE with STATUS (and prints LINE as a line).
vmm_case() {
  local case=$1 want=$2 line=${3:-} rc
  lab5_run "$case"
  rc=$?
  [ $rc = 77 ] && return 77
  tail -n 5 "$WORK/out" 2>/dev/null
  if [ "$rc" != "$want" ]; then
    echo "$case: your VMM exited with $rc, expected $want"
    return 1
  fi
  if [ -n "$line" ] && ! grep -qxF "$line" "$WORK/out"; then
    echo "$case: the console output lacks the line '$line'"
    return 1
  fi
}

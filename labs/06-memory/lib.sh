# shellcheck shell=bash
# Lab 6 helpers (sourced by labs/grade.sh after labs/lib.sh).

# walk_unit: the page walk's cmocka test (tests/unit/test_page_walk.c) against your walk.
walk_unit() {
  local out rc
  [ -x "$BUILD/tests/unit/test_page_walk" ] || { echo "test_page_walk was not built"; return 1; }
  out=$("$BUILD/tests/unit/test_page_walk" 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -E '^\[  (FAILED|ERROR|PASSED)|^\[   LINE' | head -n 12
  [ $rc = 0 ] && return 0
  echo "test_page_walk: $(printf '%s\n' "$out" | grep '^\[  FAILED  \] [a-z]' | sort -u | wc -l) case(s) failed"
  return 1
}

# lab6_core BACKEND: build guests/lab6_core.c and check it on BACKEND.
lab6_core() {
  build_guest "$WORK/lab6_core.elf" "$LAB_DIR/guests/lab6_core.c" || return 1
  check_guest "$1" "$WORK/lab6_core.elf"
}

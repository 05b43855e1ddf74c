# shellcheck shell=bash
# Lab 2 helpers (sourced by labs/grade.sh after labs/lib.sh).

# redpill BACKEND: build $STUDENT/redpill.c; three runs on BACKEND must all print
# "REDPILL: BACKEND" and end with status 0.
redpill() {
  local backend=$1 i out rc got
  backend_available "$backend" || return $?
  build_guest "$WORK/redpill.elf" "$STUDENT/redpill.c" || return 1
  for i in 1 2 3; do
    out=$("$VMLAB" run --backend "$backend" --timeout 30 "$WORK/redpill.elf" 2>&1)
    rc=$?
    got=$(printf '%s\n' "$out" | sed -n 's/^REDPILL: //p' | tail -n 1)
    printf 'run %d: %s (status %d)\n' "$i" "${got:-no REDPILL line}" "$rc"
    if [ "$got" != "$backend" ] || [ "$rc" != 0 ]; then
      printf '%s\n' "$out" | tail -n 5
      echo "run $i on $backend said '${got:-nothing}' (status $rc), expected '$backend'"
      return 1
    fi
  done
}

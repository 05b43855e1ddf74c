# shellcheck shell=bash
# Lab 3 helpers (sourced by labs/grade.sh after labs/lib.sh).

# inlined GUEST CLASS,...: the guest ran on dbt without a single callout for those classes,
# i.e. through your inline translation (`vmlab trace` records every callout as an emulated
# instruction; an inline sequence runs without one).
inlined() {
  local guest=$1 classes=$2 sum c n
  sum=$("$VMLAB" trace --backend dbt --summary --only "$classes" "$guest" 2>&1 >/dev/null)
  for c in ${classes//,/ }; do
    n=$(printf '%s\n' "$sum" | awk -v c="$c" '$1 == c { print $2 }')
    if [ -n "$n" ] && [ "$n" != 0 ]; then
      echo "$c ran through $n callouts into the emulation core: not translated inline"
      return 1
    fi
  done
}

# check_inline GUEST CLASS,...: `vmlab check` passes on dbt, and with CLASSES inline.
check_inline() {
  local elf=$1
  [[ "$elf" == */* ]] || elf=$BUILD/guest_tests/$elf.elf
  check_guest dbt "$elf" && inlined "$elf" "$2"
}

# lab3_state cli_sti|pushf|popf: inline_state.c, only that part, on dbt, inline.
lab3_state() {
  local part classes
  case $1 in
    cli_sti) part=1 classes=cli,sti ;;
    pushf) part=2 classes=pushf ;;
    popf) part=3 classes=popf ;;
    *) echo "lab3_state: $1?"; return 1 ;;
  esac
  build_guest "$WORK/state.elf" -DPART=$part "$LAB_DIR/guests/inline_state.c" || return 1
  check_inline "$WORK/state.elf" "$classes"
}

# lab3_speed cli_sti|pushf_popf MIN: the callout costs at least MIN times the inline pair.
lab3_speed() {
  local which=$1 min=$2 out line
  build_guest "$WORK/speed.elf" "$LAB_DIR/guests/inline_speed.c" || return 1
  out=$("$VMLAB" run --backend dbt --timeout 20 "$WORK/speed.elf" 2>&1)
  line=$(printf '%s\n' "$out" | grep '^inline_speed ')
  [ -n "$line" ] || { printf '%s\n' "$out" | tail -n 3; echo "inline_speed.elf printed no result"; return 1; }
  echo "$line (picoseconds per pair)"
  printf '%s\n' "$line" | tr ' ' '\n' | awk -F= -v w="$which" -v min="$min" '
    $1 == w { pair = $2 } $1 == "callout" { callout = $2 }
    END {
      if (pair <= 0) { print "no " w " time"; exit 1 }
      r = callout / pair
      printf "callout / %s = %.1f (needs >= %s)\n", w, r, min
      exit !(r >= min)
    }'
}

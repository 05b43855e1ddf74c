# shellcheck shell=bash
# Lab 4 helpers (sourced by labs/grade.sh after labs/lib.sh).
#
# The first test of a grading runs the student's predict.sh, then `vmlab bench --quick --only
# breakeven` (the sweep), and keeps both in a folder the tests of that grading share. The
# student's script gets a vmlab that refuses the break-even and footprint experiments.

lab4_shared() { echo "$WORK/../lab4"; }

lab4_prepare() {
  local s
  s=$(lab4_shared)
  [ -f "$s/done" ] && return 0
  mkdir -p "$s/work" "$s/bin"
  cat >"$s/bin/vmlab" <<WRAP
#!/bin/bash
# vmlab for predict.sh: the break-even and footprint experiments are the grader's
if [ "\${1:-}" = bench ]; then
  case " \$* " in
    *" --only "*breakeven*|*" --only "*footprint*|*"--only=breakeven"*|*"--only=footprint"*)
      echo "lab 4: the break-even and footprint experiments are the grader's, not yours" >&2; exit 64 ;;
    *" --only "*|*"--only="*) ;;
    *) echo "lab 4: vmlab bench without --only would run the break-even sweep" >&2; exit 64 ;;
  esac
fi
exec "$VMLAB" "\$@"
WRAP
  chmod +x "$s/bin/vmlab"
  VMLAB="$s/bin/vmlab" WORK="$s/work" timeout 300 bash "$STUDENT/predict.sh" >"$s/predictions.txt" 2>"$s/predict.err"
  echo $? >"$s/predict.rc"
  "$VMLAB" bench --quick --only breakeven --out "$s/bench" >"$s/bench.log" 2>&1
  touch "$s/done"
}

# lab4_case CLASS F: score one prediction. 0 if it is within a factor 2 of the observed
# crossover; 1 otherwise; 77 if the sweep could not observe this case here.
lab4_case() {
  local class=$1 f=$2 s row pred
  lab4_prepare
  s=$(lab4_shared)
  if [ ! -f "$s/bench/breakeven.csv" ] || ! head -n1 "$s/bench/breakeven.csv" | grep -q footprint_insns; then
    tail -n 3 "$s/bench.log"
    echo "this tree's vmlab bench has no break-even sweep over block footprints (bench/bench_breakeven.c)"
    return 77
  fi
  # class,footprint_insns,B_ns,h_ns,p_ns,...,observed_m(10),observed_m_min,observed_m_max,crossing(13)
  row=$(awk -F, -v c="$class" -v f="$f" '$1 == c && $2 == f { print; exit }' "$s/bench/breakeven.csv")
  [ -n "$row" ] || { echo "the sweep did not measure $class with F = $f here (does $class trap on this host?)"; return 77; }
  local obs crossing
  obs=$(echo "$row" | cut -d, -f10)
  crossing=$(echo "$row" | cut -d, -f13)
  if [ "$crossing" != inside ] || [ -z "$obs" ]; then
    echo "the sweep saw no crossover inside its range for $class F=$f ($crossing): not gradable"
    return 77
  fi
  pred=$(awk -v c="$class" -v f="$f" '$1 == c && $2 == f { print $6; exit }' "$s/predictions.txt")
  echo "sweep: B $(echo "$row" | cut -d, -f3) ns, h $(echo "$row" | cut -d, -f4) ns, p $(echo "$row" | cut -d, -f5) ns, observed m* $obs (per run $(echo "$row" | cut -d, -f11)-$(echo "$row" | cut -d, -f12))"
  if [ -z "$pred" ]; then
    [ "$(cat "$s/predict.rc")" != 0 ] && tail -n 3 "$s/predict.err"
    echo "predict.sh gave no prediction for '$class $f' (status $(cat "$s/predict.rc"))"
    return 1
  fi
  # The prediction must follow from the h, p and B on its own line (m* = B / (h - p)): a
  # number from elsewhere is not a prediction.
  local mine
  mine=$(awk -v c="$class" -v f="$f" '$1 == c && $2 == f { print $3, $4, $5; exit }' "$s/predictions.txt")
  # shellcheck disable=SC2086 # h p B as three arguments
  set -- $mine
  awk -v h="${1:-0}" -v p="${2:-0}" -v b="${3:-0}" -v m="$pred" 'BEGIN {
    if (!(b > 0) || !(h > p)) {
      printf "your h %s, p %s, B %s: B must be > 0 and h > p for a break-even point\n", h, p, b
      exit 1 }
    want = b / (h - p)
    if (m < 0.98 * want || m > 1.02 * want) {
      printf "your m* %s is not B / (h - p) = %.2f from your own h, p and B\n", m, want
      exit 1 } }' || return 1
  awk -v p="$pred" -v o="$obs" 'BEGIN {
    r = (p > 0 && o > 0) ? p / o : 0
    printf "your m* %s, observed %s: ratio %.2f (needs 0.5-2)\n", p, o, r
    exit !(r >= 0.5 && r <= 2) }'
}

#!/bin/bash
# predict.sh - lab 4 reference solution: predict the break-even m* = B / (h - p) of each case
# from measurements of this host, taken with `vmlab bench`'s cost and translation tables (not
# with its break-even sweep, which is what the grader compares against).
#
# Prints one line per case:  CLASS F h_ns p_ns B_ns m_star
# Environment (labs/README.md): VMLAB, WORK.
set -u
out=$WORK/tables
"$VMLAB" bench --quick --only classes,translation --out "$out" >/dev/null 2>&1 ||
  { echo "vmlab bench failed (see $out)" >&2; exit 1; }

# h and p: the classes table (median ns per instruction on each backend)
cost() { awk -F, -v c="$1" -v b="$2" '$1 == c && $2 == b && $4 == "yes" { print $5 }' "$out/classes.csv"; }
# B per guest instruction: the translation table's "long blocks" case, the closest to a block
# of one sensitive and F innocuous instructions (results.json: translation[].ns_per_insn)
b_per_insn=$(tr -d '\n' <"$out/results.json" |
  grep -o '"case": "long blocks"[^]]*' | grep -o '"ns_per_insn": {[^}]*' |
  grep -o '"median": [0-9.e+-]*' | head -n1 | awk '{ print $2 }')
[ -n "$b_per_insn" ] || { echo "no translation cost in $out/results.json" >&2; exit 1; }

for c in cli:1024 cli:16384 rdtsc:1024 rdtsc:16384; do
  class=${c%%:*} f=${c##*:}
  h=$(cost "$class" trap_emulate) p=$(cost "$class" dbt)
  [ -n "$h" ] && [ -n "$p" ] || { echo "# $class: not measured here (does it trap?)"; continue; }
  # the block: the sensitive instruction, F innocuous ones, and the loop's DEC and JNZ
  awk -v c="$class" -v f="$f" -v h="$h" -v p="$p" -v bi="$b_per_insn" 'BEGIN {
    b = bi * (f + 3)
    printf "%s %d %.1f %.1f %.0f %.2f\n", c, f, h, p, b, (h > p) ? b / (h - p) : 0 }'
done

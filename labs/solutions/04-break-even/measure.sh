#!/bin/bash
# measure.sh - lab 4 reference solution: measure h, p and B on this host with vmlab's own
# tools (not its benchmark), predict m* = B / (h - p) and print one line per case:
#     CLASS F h_ns p_ns B_ns m_star
# Environment (set by the grader, labs/README.md): VMLAB, BUILD, STUDENT (this folder), WORK.
set -u
here=${STUDENT:-$(cd "$(dirname "$0")" && pwd)}
cc=$BUILD/guest_tests/vmlab-guest-cc
cases="cli:64 cli:1024 cli:16384 rdtsc:1024"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# cost INSN BACKEND -> ns per execution (median of 3 runs of cost.c, itself a median)
cost() {
  local elf=$WORK/cost_$1.elf
  [ -f "$elf" ] || "$cc" -DINSN="\"$1\"" -o "$elf" "$here/cost.c" || return 1
  for i in 1 2 3; do
    "$VMLAB" run --backend "$2" --timeout 30 "$elf" | sed -n 's/^cost_ps=//p'
  done | median | awk '{ printf "%.3f\n", $1 / 1000 }'
}

# translate INSN F -> dbt's translate_ns for block.c (median of 5 runs)
translate() {
  local elf=$WORK/block_$1_$2.elf
  [ -f "$elf" ] || "$cc" -DINSN="\"$1\"" -DF="$2" -o "$elf" "$here/block.c" || return 1
  for i in 1 2 3 4 5; do
    "$VMLAB" run --stats --backend dbt --timeout 30 "$elf" 2>&1 >/dev/null | awk '$1 == "translate_ns" { print $2 }'
  done | median
}

for c in $cases; do
  insn=${c%%:*} f=${c##*:}
  h=$(cost "$insn" trap_emulate) p=$(cost "$insn" dbt)
  b=$(awk -v a="$(translate "$insn" "$f")" -v z="$(translate "$insn" 0)" 'BEGIN { print a - z }')
  awk -v c="$insn" -v f="$f" -v h="$h" -v p="$p" -v b="$b" \
    'BEGIN { printf "%s %d %.1f %.1f %.0f %.2f\n", c, f, h, p, b, (h > p) ? b / (h - p) : 0 }'
done

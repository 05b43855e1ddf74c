#!/bin/bash
# bench_memory.sh VMLAB - the memory experiment writes what docs/REPORT.md promises: the
# section, both figures and, in results.json, `memory` as one object per benchmark and backend
# with name, backend and ns_median/ns_q1/ns_q3 or not_measured. One repetition: a check of the
# output, not of any speed.
set -u
vmlab=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
"$vmlab" bench --quick --repetitions 1 --only memory --out "$out" >/dev/null 2>"$out/err" ||
  { bad "vmlab bench failed:"; cat "$out/err"; }
for f in memory.csv memory.png memory.svg memory_cr3.png index.md results.json; do
  [ -s "$out/$f" ] || bad "$f missing"
done
grep -q '"memory": \[' "$out/results.json" || bad "no memory array in results.json"
# every object: name and backend, then either the three statistics or not_measured
objs=$(grep -c '^    {"name": "[a-z0-9_]*", "backend": "[a-z_]*", ' "$out/results.json")
good=$(grep -cE '^    \{"name": "[a-z0-9_]+", "backend": "(native|trap_emulate|dbt|vtx)", ("ns_median": [0-9.]+, "ns_q1": [0-9.]+, "ns_q3": [0-9.]+\}|"not_measured": ".+"\})' "$out/results.json")
[ "$objs" -gt 20 ] && [ "$objs" = "$good" ] || bad "memory objects: $objs, well-formed: $good"
for b in ptemod pgfault hidden_fault tlb_walk ve_delivery slp_exit; do
  grep -q "\"name\": \"$b\", \"backend\": \"native\"" "$out/results.json" || bad "$b: no native row"
done
grep -q '"name": "cr3_switch_k5_roots4", "backend": "trap_emulate", "ns_median"' "$out/results.json" ||
  bad "no measured CR3 sweep on trap_emulate"
grep -q '"name": "cr3_switch_k8_roots0", "backend": "dbt", "ns_median"' "$out/results.json" ||
  bad "no measured CR3 sweep on dbt"
if grep -q '"backend": "vtx", "ns_median"' "$out/results.json"; then
  grep -q '"name": "cr3_switch_k8", "backend": "vtx"' "$out/results.json" || bad "vtx's CR3 sweep lost"
fi
grep -q '^## Memory virtualization' "$out/index.md" || bad "no section in index.md"
grep -q 'Targets (issue 11)' "$out/index.md" || bad "no targets in index.md"
[ $fail = 0 ] && echo "bench_memory: ok ($objs objects)"
exit $fail

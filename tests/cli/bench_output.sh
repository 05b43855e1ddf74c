#!/bin/bash
# bench_output.sh VMLAB CHECK_REPORT - `vmlab bench` writes its report wherever it is asked to,
# or fails loudly: the output folder is created with its parents; a folder that cannot be
# created, a file that cannot be opened or a write that fails (a full disk) is an error with
# a non-zero exit, and "report written" is never printed after one. Uses the cheapest
# experiment (translation, --quick, one repetition). No progress lines into a file.
set -u
vmlab=$1
check_report=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
ok() { n=$((n + 1)); echo "ok: $*"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "FAIL: $*"; sed 's/^/  | /' "$tmp/err"; }
bench() { "$vmlab" bench --quick --repetitions 1 --only translation "$@" >"$tmp/out" 2>"$tmp/err"; }

# 1. a fresh nested folder: created with its parents, report complete
bench --out "$tmp/fresh/a/b"; st=$?
if [ $st != 0 ]; then bad "bench into a fresh nested folder exited $st"
elif ! grep -q "report written" "$tmp/err"; then bad "no 'report written' after a good run"
elif grep -q '^bench: dbt translation' "$tmp/err"; then bad "progress lines went into a file"
elif ! "$check_report" "$tmp/fresh/a/b" >"$tmp/check" 2>&1; then cat "$tmp/check" >>"$tmp/err"; bad "check-report rejects the report"
else ok "fresh nested folder: report written and complete"; fi

# 2. the folder cannot be created (a path component is a file)
: >"$tmp/plainfile"
bench --out "$tmp/plainfile/out"; st=$?
if [ $st = 0 ] || grep -q "report written" "$tmp/err" || ! grep -q "cannot create" "$tmp/err"; then
  bad "uncreatable folder: exit $st"
else ok "uncreatable folder: exit $st, reason given"; fi

# 3. a file cannot be opened (a folder stands where results.json goes)
mkdir -p "$tmp/blocked/results.json"
bench --out "$tmp/blocked"; st=$?
if [ $st = 0 ] || grep -q "report written" "$tmp/err" || ! grep -q "results.json" "$tmp/err"; then
  bad "unopenable file: exit $st"
else ok "unopenable file: exit $st, file named"; fi

# 4. a write fails (index.md is a link to /dev/full: ENOSPC)
if [ -w /dev/full ]; then
  mkdir -p "$tmp/full"
  ln -s /dev/full "$tmp/full/index.md"
  bench --out "$tmp/full"; st=$?
  if [ $st = 0 ] || grep -q "report written" "$tmp/err" || ! grep -qi "space" "$tmp/err"; then
    bad "failed write: exit $st"
  else ok "failed write: exit $st, reason given"; fi
fi

# 5. the checker itself fails on a report with a missing figure
if [ -d "$tmp/fresh/a/b" ]; then
  cp -r "$tmp/fresh/a/b" "$tmp/broken"
  printf '<img src="missing.png">' >>"$tmp/broken/index.html"
  if "$check_report" "$tmp/broken" >"$tmp/err" 2>&1; then bad "check-report accepts a missing figure"
  else ok "check-report rejects a missing figure"; fi
fi

echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]

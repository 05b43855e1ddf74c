#!/bin/bash
# fuzz-smoke.sh BUILD_DIR [SECONDS] - run each libFuzzer target for a short, bounded time.
#
# BUILD_DIR is configured with CC=clang -DVMLAB_FUZZ=ON. Each target starts from the seeds in
# tests/fuzz/corpus plus a fresh set from tests/fuzz/gen_seeds.py (valid minimal guest,
# truncated, 32-bit, ET_DYN, overlapping segments ...), in a scratch corpus so the repository
# is never written to. Exit status non-zero on any crash, leak, timeout or sanitizer report;
# the reproducer is kept (its path is printed) and can be replayed with `TARGET FILE`.
set -u
build=${1:?usage: fuzz-smoke.sh BUILD_DIR [SECONDS]}
secs=${2:-30}
here=$(cd "$(dirname "$0")/.." && pwd)
seeds=$here/tests/fuzz/corpus
fail=0
for t in fuzz_elf_loader fuzz_decode; do
  bin=$build/tests/fuzz/$t
  if [ ! -x "$bin" ]; then
    echo "fuzz-smoke: $bin missing (configure with CC=clang -DVMLAB_FUZZ=ON)"
    fail=1
    continue
  fi
  work=$(mktemp -d /tmp/vmlab-fuzz-$t.XXXXXX)
  mkdir "$work/corpus" "$work/artifacts"
  cp "$seeds"/* "$work/corpus/" 2>/dev/null
  python3 "$here/tests/fuzz/gen_seeds.py" "$work/corpus" || echo "fuzz-smoke: seed generator failed"
  echo "fuzz-smoke: $t for ${secs}s from $(ls "$work/corpus" | wc -l) seeds"
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$work/log"
    rm -rf "$work"
  else
    echo "fuzz-smoke: $t FAILED; log and reproducer kept in $work"
    grep -E "ERROR|SUMMARY|runtime error" "$work/log" | head -5
    tail -30 "$work/log"
    ls "$work/artifacts"
    fail=1
  fi
done
exit $fail

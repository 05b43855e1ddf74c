#!/bin/bash
# fuzz-smoke.sh BUILD_DIR [SECONDS] - run each libFuzzer target for a short, bounded time from
# the seed corpus (tests/fuzz/corpus). Non-zero exit on any crash, leak or sanitizer report.
set -u
build=${1:?usage: fuzz-smoke.sh BUILD_DIR [SECONDS]}
secs=${2:-30}
seeds=$(cd "$(dirname "$0")/../tests/fuzz/corpus" && pwd)
fail=0
for t in fuzz_elf_loader fuzz_decode; do
  bin=$build/tests/fuzz/$t
  [ -x "$bin" ] || { echo "fuzz-smoke: $bin missing"; fail=1; continue; }
  corpus=$(mktemp -d); cp "$seeds"/* "$corpus/"
  echo "fuzz-smoke: $t for ${secs}s"
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" \
       >"$corpus.log" 2>&1; then
    grep -E "stat::number_of_executed_units|Done" "$corpus.log" | tail -2
  else
    echo "fuzz-smoke: $t FAILED"; tail -40 "$corpus.log"; fail=1
  fi
  rm -rf "$corpus" "$corpus.log"
done
exit $fail

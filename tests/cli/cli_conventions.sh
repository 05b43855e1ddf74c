#!/bin/bash
# cli_conventions.sh VMLAB GUEST_DIR - the command-line conventions of vmlab:
#   vmlab --version; `vmlab help CMD`, `vmlab CMD --help` and `vmlab CMD -h` print CMD's usage
#   on stdout and exit 0, for every command; --format csv is CSV only; backends --format json is
#   JSON; progress lines only when stderr is a terminal.
set -u
vmlab=$1
guests=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
ok() { n=$((n + 1)); echo "ok: $*"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "FAIL: $*"; }

# --version
out=$("$vmlab" --version); st=$?
if [ $st = 0 ] && [[ "$out" =~ ^vmlab\ [0-9]+\.[0-9]+ ]]; then ok "--version: $out"; else bad "--version exited $st: '$out'"; fi

# help for every command, three spellings, same text, exit 0, on stdout
for cmd in run trace check backends conformance classify bench; do
  "$vmlab" help "$cmd" >"$tmp/a" 2>"$tmp/ae"; s1=$?
  "$vmlab" "$cmd" --help >"$tmp/b" 2>"$tmp/be"; s2=$?
  "$vmlab" "$cmd" -h >"$tmp/c" 2>"$tmp/ce"; s3=$?
  if [ "$s1$s2$s3" != 000 ]; then bad "$cmd: help exit statuses $s1 $s2 $s3"; continue; fi
  if ! head -1 "$tmp/a" | grep -q "^usage: vmlab $cmd "; then bad "$cmd: help does not start with its usage"; continue; fi
  if ! cmp -s "$tmp/a" "$tmp/b" || ! cmp -s "$tmp/a" "$tmp/c"; then bad "$cmd: help texts differ"; continue; fi
  if [ -s "$tmp/ae" ] || [ -s "$tmp/be" ] || [ -s "$tmp/ce" ]; then bad "$cmd: help wrote to stderr"; continue; fi
  ok "help $cmd"
done
"$vmlab" help frobnicate >/dev/null 2>&1; st=$?
if [ $st = 64 ]; then ok "help of an unknown command exits 64"; else bad "help frobnicate exited $st"; fi
"$vmlab" help >"$tmp/a"; st=$?
if [ $st = 0 ] && grep -q "^usage: vmlab COMMAND" "$tmp/a"; then ok "help"; else bad "help exited $st"; fi

# classify --format csv: only CSV rows on stdout (header + one row per instruction)
elf="$guests/hello.elf"
"$vmlab" classify --format csv "$elf" >"$tmp/csv" 2>"$tmp/err"; st=$?
if [ $st != 0 ]; then bad "classify --format csv exited $st"
elif [ "$(head -1 "$tmp/csv")" != "address,section,bytes,instruction,class,category" ]; then bad "classify csv header: $(head -1 "$tmp/csv")"
elif tail -n +2 "$tmp/csv" | grep -qvE '^0x[0-9a-f]+,"[^"]*",[0-9a-f ]+,"([^"]|"")*",[a-z0-9_]+,[a-z_-]+$'; then
  bad "classify --format csv printed a line that is not a row:"; tail -n +2 "$tmp/csv" | grep -vE '^0x[0-9a-f]+,"[^"]*",[0-9a-f ]+,"([^"]|"")*",[a-z0-9_]+,[a-z_-]+$' | head -3
elif [ "$(wc -l <"$tmp/csv")" -lt 2 ]; then bad "classify --format csv found no instruction in $elf"
elif ! grep -q "instructions decoded" "$tmp/err"; then bad "classify --format csv: no totals on stderr"
else ok "classify --format csv: $(($(wc -l <"$tmp/csv") - 1)) rows, totals on stderr"; fi
"$vmlab" classify --format csv --summary "$elf" >"$tmp/csv" 2>/dev/null; st=$?
if [ $st = 0 ] && [ "$(head -1 "$tmp/csv")" = "category,class,count" ] &&
   ! tail -n +2 "$tmp/csv" | grep -qvE '^[a-z_-]+,[a-z0-9_]+,[0-9]+$'; then ok "classify --format csv --summary"
else bad "classify --format csv --summary (exit $st):"; head -5 "$tmp/csv"; fi

# backends --format json: one object per backend
"$vmlab" backends --format json >"$tmp/json"; st=$?
if [ $st = 0 ] && jq -e '.backends | length == 3 and all(has("name") and has("available") and has("reason") and has("host"))' "$tmp/json" >/dev/null; then
  ok "backends --format json"
else bad "backends --format json (exit $st):"; cat "$tmp/json"; fi
"$vmlab" backends --format xml >/dev/null 2>&1; st=$?
if [ $st = 64 ]; then ok "backends --format xml exits 64"; else bad "backends --format xml exited $st"; fi

# progress: none when stderr is not a terminal, present when it is (script gives a pty)
"$vmlab" conformance --backend dbt "$elf" >/dev/null 2>"$tmp/err"
if grep -q '\[1/1\]' "$tmp/err"; then bad "conformance printed progress to a non-terminal"; else ok "conformance: no progress into a file"; fi
if command -v script >/dev/null; then
  script -qec "'$vmlab' conformance --backend dbt '$elf' >/dev/null" /dev/null >"$tmp/tty" 2>&1
  if grep -q '\[1/1\]' "$tmp/tty"; then ok "conformance: progress on a terminal"; else bad "conformance printed no progress on a terminal"; fi
fi

echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]

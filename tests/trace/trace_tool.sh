#!/bin/bash
# trace_tool.sh VMLAB GUEST_DIR - `vmlab trace` --only / --exclude-port / --summary /
# --expect-trap say what they promise (docs/LABS.md relies on them), and vmlab-guest-cc builds
# a guest outside the source tree that `vmlab check` judges with its GUEST_EXPECT_OUTPUT.
set -u
vmlab=$1
guests=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# has FILE REGEX: the trace output contains a line matching REGEX
has() { grep -qE "$2" "$1" || { bad "$3: no line matching /$2/ in:"; head -n 40 "$1"; return 1; }; ok "$3"; }
hasnt() { ! grep -qE "$2" "$1" || { bad "$3: a line matches /$2/:"; grep -E "$2" "$1" | head -n 5; return 1; }; ok "$3"; }

# --summary: counts per class and per exit reason, no per-event lines. timer_cli executes CLI
# twice and STI twice (one to set IF before its first CLI); every IN of the clock port is an
# IO exit.
"$vmlab" trace --summary "$guests/timer_cli.elf" >/dev/null 2>"$tmp/sum" || bad "timer_cli failed under trace"
has "$tmp/sum" '^    cli +2 +privileged$' "summary counts CLI"
has "$tmp/sum" '^    sti +2 +privileged$' "summary counts STI"
has "$tmp/sum" '^    IO +[0-9]+$' "summary counts IO exits"
hasnt "$tmp/sum" 'rip \+= ' "summary prints no event lines"
ins=$(awk '$1 == "in" { print $2 }' "$tmp/sum")
[ -n "$ins" ] && [ "$ins" -gt 100 ] && ok "summary: $ins clock reads" || bad "summary: expected many IN, got '$ins'"

# --only: CLI and STI lines and the injected interrupt, nothing else
"$vmlab" trace --only cli,sti,interrupt "$guests/timer_cli.elf" >/dev/null 2>"$tmp/only"
[ "$(grep -c '\[cli\]' "$tmp/only")" = 2 ] && ok "--only cli shows both CLIs" || bad "--only: CLI lines: $(grep -c '\[cli\]' "$tmp/only")"
has "$tmp/only" 'interrupt vector 64 injected' "--only interrupt shows the timer interrupt"
hasnt "$tmp/only" '\[in\]|exit IO' "--only hides IN and exits"

# --exclude-port: the clock polls (port 0x51c) disappear, the console output stays
"$vmlab" trace --exclude-port 0x51c "$guests/timer_cli.elf" >/dev/null 2>"$tmp/ex"
hasnt "$tmp/ex" 'port in 0x51c|port 0x51c' "--exclude-port 0x51c hides the clock polls"
has "$tmp/ex" 'port out 0xe9' "--exclude-port keeps the console"
"$vmlab" trace --summary --exclude-port 1308 "$guests/timer_cli.elf" >/dev/null 2>"$tmp/sumex"
hasnt "$tmp/sumex" '^    in ' "--summary --exclude-port 1308 (decimal) counts no clock IN"

# --expect-trap: POPF runs natively on trap_emulate (never traps), CLI always traps
"$vmlab" trace --timeout 30 --expect-trap popf --summary "$guests/popf.elf" >/dev/null 2>"$tmp/popf"
has "$tmp/popf" '^expect-trap popf: executed 1 time, trapped 0, ran natively without trapping 1$' \
  "--expect-trap popf: executed once, never trapped"
# (single-stepping costs a signal per guest instruction, ~20 us on a loaded VM: small guests)
"$vmlab" trace --expect-trap cli --only cli "$guests/hlt_cli.elf" >/dev/null 2>"$tmp/cli"
has "$tmp/cli" '^expect-trap cli: executed 1 time, trapped 1, ran natively without trapping 0$' \
  "--expect-trap cli: the CLI trapped"
has "$tmp/cli" 'guest instructions stepped' "--expect-trap counts the steps"
# the single-stepped run still completes correctly (PASS) and counts steps
"$vmlab" trace --timeout 30 --expect-trap sgdt --summary "$guests/hello.elf" >"$tmp/hello.out" 2>"$tmp/hello"
grep -qx PASS "$tmp/hello.out" && ok "hello passes while single-stepped" || bad "hello under --expect-trap"
has "$tmp/hello" 'executed 0 times.*[1-9][0-9]* guest instructions stepped|stepped' "steps counted"

# bad options: one line, status 64
for args in "--only nosuchclass" "--exclude-port 70000" "--expect-trap bogus" \
  "--backend dbt --expect-trap popf"; do
  # shellcheck disable=SC2086
  "$vmlab" trace $args "$guests/hello.elf" >/dev/null 2>"$tmp/err"
  rc=$?
  [ $rc = 64 ] && [ "$(grep -c . "$tmp/err")" = 1 ] && ok "trace $args -> 64" || { bad "trace $args -> $rc"; cat "$tmp/err"; }
done
"$vmlab" run --summary "$guests/hello.elf" >/dev/null 2>&1
[ $? = 64 ] && ok "run --summary refused" || bad "run --summary accepted"

# a guest built outside the tree, judged on its console output
cc=$guests/vmlab-guest-cc
cat >"$tmp/outside.c" <<'C'
#include "guest.h"
GUEST_EXPECT_OUTPUT("*", "built outside the tree: 7");
int main(void)
{
    guest_printf("built outside the tree: %d\n", 7);
    GUEST_DONE();
}
C
if "$cc" -o "$tmp/outside.elf" "$tmp/outside.c"; then
  "$vmlab" check --backend dbt "$tmp/outside.elf" | grep -q ': ok (' && ok "vmlab-guest-cc guest passes" || bad "vmlab-guest-cc guest"
  sed -i 's/: %d/: %d!/' "$tmp/outside.c"
  "$cc" -o "$tmp/outside.elf" "$tmp/outside.c"
  "$vmlab" check --backend dbt "$tmp/outside.elf" >"$tmp/chk"
  [ $? = 1 ] && grep -q "lacks the line 'built outside the tree: 7'" "$tmp/chk" && ok "wrong output is FAIL" || { bad "wrong output"; cat "$tmp/chk"; }
else
  bad "vmlab-guest-cc failed"
fi

echo "trace_tool: $fail failure(s)"
[ $fail = 0 ]

#!/bin/bash
# cli_errors.sh VMLAB GUEST_DIR - bad input gets one clear line on stderr and a documented
# exit status; the vmlab process never crashes. Each case: expected status + stderr pattern.
set -u
vmlab=$1
guests=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0

expect() { # expect STATUS PATTERN -- command...
  local want=$1 pattern=$2; shift 3
  n=$((n + 1))
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: '$*' exited $got, expected $want"; cat "$tmp/err"; fail=$((fail + 1)); return
  fi
  if ! grep -qE "$pattern" "$tmp/err"; then
    echo "FAIL: '$*' stderr does not match /$pattern/:"; cat "$tmp/err"; fail=$((fail + 1)); return
  fi
  if [ "$pattern" != usage ] && [ "$(grep -c . "$tmp/err")" -gt 3 ]; then
    echo "FAIL: '$*' printed more than a short message:"; cat "$tmp/err"; fail=$((fail + 1)); return
  fi
  echo "ok: $* -> $got"
}

printf 'not an elf at all' >"$tmp/garbage.elf"
head -c 10 /bin/true >"$tmp/truncated.elf"
# a 32-bit ELF header: magic + ELFCLASS32
printf '\177ELF\001\001\001\000\000\000\000\000\000\000\000\000' >"$tmp/elf32.elf"
head -c 4000 /dev/zero >>"$tmp/elf32.elf"
: >"$tmp/empty.elf"

expect 64 'unknown command' -- "$vmlab" frobnicate
expect 64 'usage' -- "$vmlab"
expect 64 'unknown backend' -- "$vmlab" run --backend nosuch "$tmp/garbage.elf"
expect 64 'bad option' -- "$vmlab" run --frobnicate "$tmp/garbage.elf"
expect 64 'timeout' -- "$vmlab" run --timeout -3 "$tmp/garbage.elf"
# a time budget must be a finite positive number: NaN, infinities, zero, garbage, nothing
for t in nan NaN inf -inf 0 abc 5s '' 1e999; do
  expect 64 'timeout' -- "$vmlab" run --timeout "$t" "$tmp/garbage.elf"
done
expect 64 'timeout' -- "$vmlab" check --timeout nan "$tmp/garbage.elf"
expect 64 'exactly one IMAGE' -- "$vmlab" run
expect 66 '[Nn]o such file' -- "$vmlab" run "$tmp/does-not-exist.elf"
expect 65 'ELF|magic' -- "$vmlab" run "$tmp/garbage.elf"
expect 65 'ELF|short|truncated|small' -- "$vmlab" run "$tmp/truncated.elf"
expect 65 '32-bit|ELFCLASS32' -- "$vmlab" run "$tmp/elf32.elf"
expect 65 'ELF|empty|short|small' -- "$vmlab" run "$tmp/empty.elf"
expect 65 'ET_DYN|position|PIE|static|interp|dynamic' -- "$vmlab" run /bin/true
expect 65 'directory|regular' -- "$vmlab" run "$tmp"
# a FIFO (or a device) as the image: refused at once, never waiting for a writer
mkfifo "$tmp/fifo.elf"
expect 65 'regular' -- timeout 20 "$vmlab" run "$tmp/fifo.elf"
expect 65 'regular' -- timeout 20 "$vmlab" check --backend trap_emulate "$tmp/fifo.elf"
expect 65 'regular' -- timeout 20 "$vmlab" run /dev/zero
expect 64 'format' -- "$vmlab" conformance --format xml
expect 64 'unknown backend' -- "$vmlab" conformance --backend nosuch
expect 66 '[Nn]o such file' -- "$vmlab" classify "$tmp/does-not-exist"
expect 65 'ELF|magic' -- "$vmlab" classify "$tmp/garbage.elf"
expect 65 'regular' -- timeout 20 "$vmlab" classify "$tmp/fifo.elf"

echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]

#!/bin/bash
# trace_paging.sh VMLAB GUEST_DIR - `vmlab trace` shows the faults the shadow MMU handles, each
# with the guest's page walk that decided it (mmu/page_walk.c), and translated blocks read from
# the guest-physical pages the guest's tables name (a guest that remaps its code).
set -u
vmlab=$1
guests=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
has() { grep -qE "$2" "$1" || { bad "$3: no line matching /$2/ in:"; head -n 40 "$1"; return 1; }; ok "$3"; }

for b in trap_emulate dbt; do
  "$vmlab" trace --only pagefault,exception --backend $b "$guests/paging_not_present.elf" \
    >/dev/null 2>"$tmp/$b" || bad "$b: paging_not_present failed under trace"
  has "$tmp/$b" '^0x[0-9a-f]+  hidden page fault: (read|write|fetch) 0x[0-9a-f]+ -> guest-physical 0x[0-9a-f]+  walk: PML4E 0x[0-9a-f]+, PDPTE' "$b: hidden faults with their walk"
  # the not-present PTE (P = 0) is the last entry of the walk that refused the read
  has "$tmp/$b" '^0x[0-9a-f]+  page fault for the guest: read 0x[0-9a-f]+800  walk: .*PTE 0x[0-9a-f]*[02468ace]$' "$b: a true #PF with the not-present PTE"
  has "$tmp/$b" 'exception vector 14 delivered to guest IDT \(error 0\)' "$b: the #PF delivered"
  has "$tmp/$b" 'store to a traced page table: write' "$b: the PTE stores caught"
done
# dbt's block listing reads code from where the guest's tables put it: in paging_cr3_switch
# one address holds `mov $0xa, %eax` in one space and `mov $0xb` in the other (the guest
# rewrites B's to 0xbb later; the guest column is read when the trace is printed)
"$vmlab" trace --only block --backend dbt "$guests/paging_cr3_switch.elf" >/dev/null 2>"$tmp/blocks" ||
  bad "paging_cr3_switch failed under trace"
has "$tmp/blocks" '^    0x[0-9a-f]+ mov eax, 0xa +\| mov eax, 0xa$' "dbt: space A's code at the shared address"
has "$tmp/blocks" '^    0x[0-9a-f]+ mov eax, 0xbb? +\| mov eax, 0xb$' "dbt: space B's code at the shared address"
[ $fail = 0 ] && echo "trace_paging: all passed" || echo "trace_paging: $fail FAILED"
exit $((fail > 0))

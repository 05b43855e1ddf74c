# The student's walker ignores the R/W bit of the entries: every page looks writable.
# paging_write_protect (a write to a read-only page must be #PF) and the unit test must notice.
s/rw = rw && (e & PTE_RW);/rw = rw;/

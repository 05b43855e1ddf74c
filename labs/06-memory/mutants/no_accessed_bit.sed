# The student's walker never sets the accessed bit (it still sets dirty on a write).
# paging_accessed_dirty must notice.
s/uint64_t want = w->entry\[i\] | PTE_A;/uint64_t want = w->entry[i];/

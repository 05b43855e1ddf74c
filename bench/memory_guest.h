/* memory_guest.h - what bench_memory.c and its guest blob (memory_guest.c) agree on: the
 * scenarios and the guest-physical addresses the blob builds in (all in RAM, identity mapped by
 * the platform at start, away from the guest image and the stack). */
#ifndef VMLAB_MEMORY_GUEST_H
#define VMLAB_MEMORY_GUEST_H

enum memory_scenario {
    MEMORY_PTEMOD = 1,
    MEMORY_PGFAULT,
    MEMORY_HIDDEN,
    MEMORY_CR3,
    MEMORY_TLBWALK,
    MEMORY_VE,
    MEMORY_SLPEXIT,
    MEMORY_SLPOUT,
};

#define MEM_TABLES 0x41000000ULL  /* page tables the blob builds (up to 1 MiB) */
#define MEM_IDT 0x41100000ULL     /* its IDT */
#define MEM_VE_INFO 0x41200000ULL /* its #VE information area */
#define MEM_VE_INFO_BUSY_TEXT "0x41200004"
#define MEM_REGION 0x42000000ULL     /* the linear range the scenarios map */
#define MEM_FRAMES 0x42800000ULL     /* frames mapped there (up to 8 MiB) */
#define MEM_SLP_PAGE 0x42000000ULL   /* the page second-level permissions are put on */
#define MEM_WALK_BYTES (16ULL << 20) /* TLBWALK's range, 4 KiB pages */
#define MEM_MAX_SPACES 8
#define MEM_MAX_HIDDEN 2048 /* HIDDEN's pages at most (8 MiB) */

#endif

/* vmm.c - lab 5: a minimal VMM on the Linux KVM API that runs vmlab's guests. One file, libc
 * and <linux/kvm.h> only (labs/05-kvm-vmm/HANDOUT.md). The TODOs are yours; load_elf() is
 * given, and so is the contract below, which the grader checks.
 *
 *   ./vmm GUEST.elf     console (port 0xE9) on stdout; exit status: the value the guest
 *                       wrote to port 0xF4, or 83 halted, 81 triple fault (shutdown),
 *                       84 access outside RAM, 70 anything KVM could not do, 65 bad image,
 *                       69 no usable /dev/kvm, 64 usage
 *
 * The guest model is vmlab's (vmm/guest_layout.h): 64 MiB of RAM at guest-physical 1 GiB,
 * identity-mapped with 2 MiB pages by page tables at RAM + 0x10000, a GDT at RAM + 0x1000
 * (null, 64-bit code 0x08, data 0x10), the guest's ELF linked at 0x40200000, RSP at the top
 * of RAM, long mode, CPL 0, interrupts off. No IDT: an exception the guest does not handle
 * itself becomes a triple fault. Devices: the console (0xE9), the exit port (0xF4) and a
 * scratch register (0x530: IN returns what OUT stored).
 *
 * The steps, as in the KVM API documentation (Documentation/virt/kvm/api.rst):
 * open /dev/kvm, KVM_CREATE_VM, memory (mmap + KVM_SET_USER_MEMORY_REGION), KVM_CREATE_VCPU,
 * mmap its struct kvm_run, KVM_SET_CPUID2 (long mode must be advertised before EFER.LME can
 * be set), KVM_SET_SREGS / KVM_SET_REGS, then KVM_RUN in a loop, switching on exit_reason.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM_BASE 0x40000000ULL
#define RAM_SIZE (64ULL << 20)
#define GDT_OFFSET 0x1000ULL
#define PT_OFFSET 0x10000ULL /* PML4, then PDPT, then PD */

#define PORT_CONSOLE 0xE9
#define PORT_EXIT 0xF4
#define PORT_SCRATCH 0x530

enum {
    ST_USAGE = 64,
    ST_BAD_IMAGE = 65,
    ST_NO_KVM = 69,
    ST_INTERNAL = 70,
    ST_SHUTDOWN = 81,
    ST_HALTED = 83,
    ST_MMIO = 84
};

/* Control-register and EFER bits (Intel SDM vol. 3A 2.5, 2.2.1). */
#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define PTE_P (1ULL << 0)
#define PTE_W (1ULL << 1)
#define PTE_PS (1ULL << 7)

static uint8_t *ram;

static void *gpa(uint64_t a)
{
    return ram + (a - RAM_BASE);
}

/* Copy the ELF's PT_LOAD segments into RAM; returns the entry point or 0. */
static uint64_t load_elf(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(path);
        return 0;
    }
    uint8_t *f = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f == MAP_FAILED || (size_t)st.st_size < sizeof(Elf64_Ehdr))
        return 0;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_machine != EM_X86_64 ||
        eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size) {
        fprintf(stderr, "%s: not an x86-64 ELF\n", path);
        return 0;
    }
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff);
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        if (ph[i].p_paddr < RAM_BASE || ph[i].p_memsz > RAM_SIZE ||
            ph[i].p_paddr - RAM_BASE > RAM_SIZE - ph[i].p_memsz || ph[i].p_filesz > ph[i].p_memsz ||
            ph[i].p_offset + ph[i].p_filesz > (uint64_t)st.st_size) {
            fprintf(stderr, "%s: segment %u outside guest RAM or the file\n", path, i);
            return 0;
        }
        memcpy(gpa(ph[i].p_paddr), f + ph[i].p_offset, ph[i].p_filesz);
        memset((uint8_t *)gpa(ph[i].p_paddr) + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
    }
    return eh->e_entry;
}

/* TODO (step 2): page tables in guest RAM that identity-map the 1 GiB from RAM_BASE with
 * 2 MiB pages (SDM vol. 3A 4.5): a PML4 at RAM_BASE + PT_OFFSET, a PDPT and a PD in the two
 * pages after it. Which PML4 and PDPT entries does address 0x40000000 use? Return the PML4's
 * guest-physical address (the guest's CR3; vmlab's guests check it is 0x40010000). */
static uint64_t build_page_tables(void)
{
    return 0;
}

/* TODO (step 2): the special registers for long mode at CPL 0 (KVM_GET_SREGS, change,
 * KVM_SET_SREGS):
 *   - a GDT in guest memory at RAM_BASE + GDT_OFFSET: null, 64-bit code (0x08), data (0x10)
 *     (descriptor layout: SDM vol. 3A 3.4.5; 0x00AF9B000000FFFF is a 64-bit ring-0 code
 *     segment), and sregs.gdt pointing at it;
 *   - the hidden parts of CS (selector 0x08, 64-bit code: type 0xB, s, present, l) and of DS,
 *     ES, FS, GS, SS (0x10, data: type 0x3, s, present, db): struct kvm_segment, which KVM
 *     loads as-is (nothing reads the GDT on entry);
 *   - no IDT (base 0, limit 0): an exception the guest does not handle becomes a triple
 *     fault;
 *   - CR3 (step 2's page tables), CR4.PAE, CR0 with PE, PG (and MP, ET, NE, WP: the guests
 *     check PG and PE), EFER.LME and EFER.LMA (SDM vol. 3A 9.8.5: the order a real CPU needs,
 *     which KVM_SET_SREGS lets you skip). */
static int setup_sregs(int vcpu)
{
    (void)vcpu;
    (void)build_page_tables;
    return -1;
}

/* TODO (step 2): give the vCPU a CPUID (KVM_GET_SUPPORTED_CPUID on the /dev/kvm fd, then
 * KVM_SET_CPUID2 on the vCPU fd). Without one, KVM refuses EFER.LME: why? */
static int setup_cpuid(int kvm, int vcpu)
{
    (void)kvm;
    (void)vcpu;
    return -1;
}

/* TODO (step 4): KVM_RUN until the guest is done, switching on r->exit_reason:
 *   KVM_EXIT_IO     the bytes are at (uint8_t *)r + r->io.data_offset, r->io.count times
 *                   r->io.size; OUT to PORT_CONSOLE: print the byte; OUT to PORT_EXIT: the
 *                   run is over, return the value (0-255); PORT_SCRATCH: IN returns what the
 *                   last OUT stored; IN from PORT_CONSOLE reads 0xE9; other ports: IN reads
 *                   all ones, OUT is ignored
 *   KVM_EXIT_HLT    ST_HALTED (no interrupt can come: this VMM has no timer)
 *   KVM_EXIT_SHUTDOWN  ST_SHUTDOWN (triple fault)
 *   KVM_EXIT_MMIO   ST_MMIO (the guest touched guest-physical memory that is not RAM)
 *   KVM_EXIT_FAIL_ENTRY, KVM_EXIT_INTERNAL_ERROR, anything else: ST_INTERNAL, with a line
 *                   on stderr saying which
 *   and go on (KVM_RUN again) for the exits that need nothing from you: which are they?
 *   (Hint: run mov_cr.elf without an in-kernel LAPIC.) An EINTR from KVM_RUN is not an
 *   error either. */
static int run(int vcpu, struct kvm_run *r)
{
    (void)vcpu;
    (void)r;
    return ST_INTERNAL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
        return ST_USAGE;
    }
    /* TODO (step 1): open /dev/kvm (ST_NO_KVM if you cannot), check KVM_GET_API_VERSION,
     * KVM_CREATE_VM; RAM_SIZE bytes of anonymous memory (ram = mmap ...) given to the VM as
     * memory slot 0 at guest-physical RAM_BASE (KVM_SET_USER_MEMORY_REGION). Then load the
     * guest: */
    if (!ram) {
        fprintf(stderr, "vmm: not written yet (step 1)\n");
        return ST_INTERNAL;
    }
    uint64_t entry = load_elf(argv[1]);
    if (!entry)
        return ST_BAD_IMAGE;
    /* TODO (step 3): KVM_CREATE_VCPU, mmap its struct kvm_run (KVM_GET_VCPU_MMAP_SIZE bytes,
     * MAP_SHARED on the vCPU fd), setup_cpuid, setup_sregs, and the general registers
     * (KVM_SET_REGS): RIP at the entry point, RSP at the top of RAM, RFLAGS 0x2 (bit 1 is
     * always set; IF clear). Then run(). */
    (void)setup_cpuid;
    (void)setup_sregs;
    (void)run;
    return ST_INTERNAL;
}

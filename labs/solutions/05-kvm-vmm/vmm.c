/* vmm.c - lab 5 reference solution: a minimal VMM on the Linux KVM API that runs vmlab's
 * guests. One file, libc and <linux/kvm.h> only.
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

/* Identity map of the 1 GiB from RAM_BASE with 2 MiB pages (SDM vol. 3A 4.5): PML4[0] ->
 * PDPT, PDPT[1] (1 GiB) -> PD, PD[i] -> RAM_BASE + i * 2 MiB. */
static uint64_t build_page_tables(void)
{
    uint64_t pml4 = RAM_BASE + PT_OFFSET, pdpt = pml4 + 0x1000, pd = pdpt + 0x1000;
    uint64_t *p4 = gpa(pml4), *p3 = gpa(pdpt), *p2 = gpa(pd);
    p4[0] = pdpt | PTE_P | PTE_W;
    p3[(RAM_BASE >> 30) & 511] = pd | PTE_P | PTE_W;
    for (uint64_t i = 0; i < 512; i++)
        p2[i] = (RAM_BASE + (i << 21)) | PTE_P | PTE_W | PTE_PS;
    return pml4;
}

static void set_segment(struct kvm_segment *s, uint16_t selector, uint8_t type, bool code)
{
    memset(s, 0, sizeof(*s));
    s->selector = selector;
    s->limit = 0xFFFFFFFF;
    s->type = type;
    s->present = 1;
    s->s = 1;
    s->g = 1;
    s->l = code;   /* 64-bit code */
    s->db = !code; /* 32-bit data (ignored in long mode, but as a descriptor would say) */
}

/* Long mode, CPL 0, the GDT in memory matching the hidden segment state (SDM vol. 3A 9.8.5). */
static int setup_sregs(int vcpu)
{
    struct kvm_sregs sr;
    if (ioctl(vcpu, KVM_GET_SREGS, &sr) < 0)
        return -1;
    uint64_t *gdt = gpa(RAM_BASE + GDT_OFFSET);
    gdt[0] = 0;
    gdt[1] = 0x00AF9B000000FFFFULL; /* 64-bit code, DPL 0 */
    gdt[2] = 0x00CF93000000FFFFULL; /* data */
    sr.gdt.base = RAM_BASE + GDT_OFFSET;
    sr.gdt.limit = 3 * 8 - 1;
    sr.idt.base = 0;
    sr.idt.limit = 0; /* no IDT: an unhandled exception is a triple fault */
    set_segment(&sr.cs, 0x08, 0xB, true);
    set_segment(&sr.ds, 0x10, 0x3, false);
    sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
    sr.cr3 = build_page_tables();
    sr.cr4 = CR4_PAE;
    sr.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sr.efer = EFER_LME | EFER_LMA;
    return ioctl(vcpu, KVM_SET_SREGS, &sr);
}

/* What KVM supports, as the guest's CPUID: EFER.LME needs CPUID.80000001H:EDX.LM. */
static int setup_cpuid(int kvm, int vcpu)
{
    int n = 128;
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
    if (!c)
        return -1;
    c->nent = n;
    int rc = ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c);
    if (rc == 0)
        rc = ioctl(vcpu, KVM_SET_CPUID2, c);
    free(c);
    return rc;
}

static int run(int vcpu, struct kvm_run *r)
{
    uint32_t scratch = 0;
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            perror("KVM_RUN");
            return ST_INTERNAL;
        }
        switch (r->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)r + r->io.data_offset;
            for (uint32_t i = 0; i < r->io.count; i++, data += r->io.size) {
                uint32_t v = 0;
                if (r->io.direction == KVM_EXIT_IO_OUT) {
                    memcpy(&v, data, r->io.size);
                    if (r->io.port == PORT_CONSOLE)
                        putchar((int)(v & 0xFF));
                    else if (r->io.port == PORT_EXIT) {
                        fflush(stdout);
                        return (int)(v & 0xFF);
                    } else if (r->io.port == PORT_SCRATCH)
                        scratch = v;
                } else {
                    v = r->io.port == PORT_CONSOLE   ? 0xE9
                        : r->io.port == PORT_SCRATCH ? scratch
                                                     : 0xFFFFFFFF;
                    memcpy(data, &v, r->io.size);
                }
            }
            break;
        }
        case KVM_EXIT_SET_TPR: /* MOV to CR8 without an in-kernel LAPIC: nothing to do */
        case KVM_EXIT_INTR:    /* a signal interrupted KVM_RUN */
            break;
        case KVM_EXIT_HLT:
            fflush(stdout);
            fprintf(stderr, "vmm: guest halted\n");
            return ST_HALTED;
        case KVM_EXIT_SHUTDOWN:
            fflush(stdout);
            fprintf(stderr, "vmm: triple fault (shutdown)\n");
            return ST_SHUTDOWN;
        case KVM_EXIT_MMIO:
            fflush(stdout);
            fprintf(stderr, "vmm: access to %#llx outside RAM\n",
                    (unsigned long long)r->mmio.phys_addr);
            return ST_MMIO;
        case KVM_EXIT_FAIL_ENTRY:
            fprintf(stderr, "vmm: entry failed, reason %#llx\n",
                    (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
            return ST_INTERNAL;
        case KVM_EXIT_INTERNAL_ERROR:
            fprintf(stderr, "vmm: KVM internal error, suberror %u\n", r->internal.suberror);
            return ST_INTERNAL;
        default:
            fprintf(stderr, "vmm: unexpected exit reason %u\n", r->exit_reason);
            return ST_INTERNAL;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
        return ST_USAGE;
    }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        perror("/dev/kvm");
        return ST_NO_KVM;
    }
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        fprintf(stderr, "vmm: unexpected KVM API version\n");
        return ST_NO_KVM;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        perror("KVM_CREATE_VM");
        return ST_NO_KVM;
    }
    ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
               -1, 0);
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = RAM_BASE,
        .memory_size = RAM_SIZE,
        .userspace_addr = (uint64_t)(uintptr_t)ram,
    };
    if (ram == MAP_FAILED || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        perror("guest memory");
        return ST_INTERNAL;
    }
    uint64_t entry = load_elf(argv[1]);
    if (!entry)
        return ST_BAD_IMAGE;
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *r =
        vcpu < 0 || run_size <= 0
            ? MAP_FAILED
            : mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (r == MAP_FAILED || setup_cpuid(kvm, vcpu) < 0 || setup_sregs(vcpu) < 0) {
        perror("vcpu setup");
        return ST_INTERNAL;
    }
    struct kvm_regs regs = {.rip = entry, .rsp = RAM_BASE + RAM_SIZE, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
        perror("KVM_SET_REGS");
        return ST_INTERNAL;
    }
    return run(vcpu, r);
}

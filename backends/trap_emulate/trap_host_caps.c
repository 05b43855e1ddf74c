/* trap_host_caps.c - what this host lets trap_emulate catch, and the system-call guards.
 *
 * Every probe runs in a forked child with its own SIGSEGV/SIGILL handlers: a probe that goes
 * wrong (SYSENTER entering the kernel, a kernel that kills instead of signalling) can only
 * take the child down. Results are cached for the process (they describe the host).
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "trap_emulate.h"
#include "vmm/guest_layout.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif
#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif
#define USER_SPACE_END 0x800000000000ULL /* 47-bit user address space */

enum { PROBE_FAULTED = 42, PROBE_RAN = 43 };

static void probe_fault_handler(int sig)
{
    (void)sig;
    _exit(PROBE_FAULTED);
}

/* Run fn in a child; PROBE_FAULTED if it raised SIGSEGV/SIGILL, PROBE_RAN if it returned,
 * -1 if the child died some other way. */
static int probe_in_child(void (*fn)(void))
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        signal(SIGSEGV, probe_fault_handler);
        signal(SIGILL, probe_fault_handler);
        alarm(2);
        fn();
        _exit(PROBE_RAN);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void probe_cpuid_faulting(void)
{
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0)
        _exit(PROBE_RAN + 1);
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    (void)a, (void)b, (void)c, (void)d;
}

static void probe_rdtsc_faulting(void)
{
    /* PR_SET_TSC can return 0 and still leave RDTSC running (seen on some hypervisors):
     * only executing it tells. */
    if (prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0) != 0)
        _exit(PROBE_RAN + 1);
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
}

static void probe_sgdt(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } gdtr;
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    /* The kernel's UMIP emulation returns a fixed dummy (limit 0) instead of the real GDTR. */
    _exit(gdtr.limit == 0 ? PROBE_RAN + 2 : PROBE_RAN);
}

static void probe_sysenter(void)
{
    __asm__ volatile("sysenter" ::: "memory");
}

/* INT1 (ICEBP) is a trap: the hardware saves the RIP after it (SDM vol. 2A INT1). Some
 * hypervisors below us report the INT1's own RIP instead; measure which. */
static volatile uint64_t probe_int1_at;
static void probe_int1_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig, (void)si;
    const ucontext_t *uc = ucv;
    _exit((uint64_t)uc->uc_mcontext.gregs[REG_RIP] == probe_int1_at ? PROBE_RAN + 3 : PROBE_RAN);
}

static void probe_int1(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = probe_int1_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGTRAP, &sa, NULL);
    __asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, %0\n 1: .byte 0xf1"
                     : "=m"(probe_int1_at)::"rax", "memory");
}

static struct trap_host_caps caps;
static struct trap_xsave_layout xsave_layout;
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;

#define XFEATURE_AMX_TILE ((1ULL << 17) | (1ULL << 18)) /* XTILECFG, XTILEDATA */

/* The guest runs natively with the host's XCR0, so every user component enabled there is
 * guest state (SDM vol. 1 13.3). AMX tile data needs a per-process permission the guest
 * cannot get (its use faults), so it is left out. CPUID.(EAX=0DH,ECX=0):EBX is the size of
 * the standard-format area for the components enabled in XCR0 (SDM vol. 1 13.4). */
static void xsave_probe(void)
{
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    if (!((c >> 27) & 1)) /* CPUID.1:ECX.OSXSAVE */
        return;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    __cpuid_count(0xD, 0, a, b, c, d);
    xsave_layout.mask = (((uint64_t)hi << 32) | lo) & ~XFEATURE_AMX_TILE;
    xsave_layout.size = b;
}

static void caps_probe(void)
{
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    memcpy(caps.vendor, &b, 4);
    memcpy(caps.vendor + 4, &d, 4);
    memcpy(caps.vendor + 8, &c, 4);
    caps.vendor[12] = 0;
    __cpuid_count(7, 0, a, b, c, d);
    caps.umip = (c >> 2) & 1; /* CPUID.(EAX=7,ECX=0):ECX[2] UMIP */
    caps.fsgsbase = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0;
    caps.cpuid_faulting = probe_in_child(probe_cpuid_faulting) == PROBE_FAULTED;
    caps.rdtsc_faulting = probe_in_child(probe_rdtsc_faulting) == PROBE_FAULTED;
    int sgdt = probe_in_child(probe_sgdt);
    caps.umip_sgdt = sgdt == PROBE_FAULTED ? 2 : sgdt == PROBE_RAN + 2 ? 1 : 0;
    caps.sysenter_ud =
        probe_in_child(probe_sysenter) == PROBE_FAULTED && strcmp(caps.vendor, "GenuineIntel") != 0;
    caps.int1_rip_at_insn = probe_in_child(probe_int1) == PROBE_RAN + 3;
    uint8_t sel = SYSCALL_DISPATCH_FILTER_ALLOW;
    caps.syscall_user_dispatch =
        prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, GUEST_SPACE_END,
              USER_SPACE_END - GUEST_SPACE_END, &sel) == 0;
    if (caps.syscall_user_dispatch)
        prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    xsave_probe();
}

const struct trap_host_caps *trap_host_caps(void)
{
    pthread_once(&caps_once, caps_probe);
    return &caps;
}

const struct trap_xsave_layout *trap_xsave_layout(void)
{
    pthread_once(&caps_once, caps_probe);
    return &xsave_layout;
}

void trap_faulting_set(bool cpuid, bool rdtsc)
{
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, cpuid ? 0 : 1);
    prctl(PR_SET_TSC, rdtsc ? PR_TSC_SIGSEGV : PR_TSC_ENABLE, 0, 0, 0);
}

/* seccomp filter (classic BPF over struct seccomp_data): trap every syscall that is not the
 * x86-64 ABI (INT 0x80, SYSENTER: 32-bit entry points a guest could reach natively), and any
 * syscall issued from the guest window. Everything else is allowed. */
static int seccomp_install_once(void)
{
    static int installed;
    if (installed)
        return 0;
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        /* instruction_pointer: high half must be 0 and low half inside the window */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)GUEST_SPACE_BASE, 0, 2),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)GUEST_SPACE_END, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        return -errno;
    installed = 1;
    return 0;
}

int trap_guards_install(uint8_t *sud_selector)
{
    /* The seccomp filter runs on every system call of the process, rt_sigreturn included -
     * the second half of every trap (~50-100 ns here). Where Syscall User Dispatch catches
     * every guest entry into the kernel - SYSCALL and INT 0x80 by their RIP in the guest window,
     * SYSENTER never reaching the kernel because it raises #UD in 64-bit mode (AMD) - it adds
     * nothing, and is left out. */
    const struct trap_host_caps *caps = trap_host_caps();
    if (!(caps->syscall_user_dispatch && caps->sysenter_ud)) {
        int rc = seccomp_install_once();
        if (rc < 0)
            return rc;
    }
    if (trap_host_caps()->syscall_user_dispatch) {
        *sud_selector = SYSCALL_DISPATCH_FILTER_BLOCK;
        if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, GUEST_SPACE_END,
                  USER_SPACE_END - GUEST_SPACE_END, sud_selector) != 0)
            return -errno;
    }
    return 0;
}

void trap_guards_remove_thread(void)
{
    if (trap_host_caps()->syscall_user_dispatch)
        prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
}

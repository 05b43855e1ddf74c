/* test_emu.c - the emulation core: concrete before/after states for the sensitive classes,
 * and exact interrupt frames (Intel SDM vol. 2 and vol. 3A 6.14). */
#include <asm/processor-flags.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "emu/emu.h"
#include "vmm/guest_layout.h"
#include "vmm/platform.h"

static struct guest_memory *mem;
static struct vcpu_state st;
static struct emu_ctx ctx;
static struct x86_decoder dec;
#define CODE GUEST_IMAGE_BASE
#define STACK (GUEST_RAM_BASE + 0x800000)

static int setup(void **unused)
{
    (void)unused;
    if (guest_memory_create(0, &mem) < 0)
        return -1;
    x86_decoder_init(&dec);
    return 0;
}

static int teardown(void **unused)
{
    (void)unused;
    guest_memory_destroy(mem);
    return 0;
}

static int reset(void **unused)
{
    (void)unused;
    memset(mem->ram, 0, GUEST_IMAGE_OFFSET + 0x100000);
    platform_setup(mem);
    emu_reset_state(&st, CODE);
    st.gpr[X86_RSP] = STACK;
    ctx.state = &st;
    ctx.mem = mem;
    return 0;
}

/* Put bytes at RIP, decode and execute them. */
static struct emu_result run(const char *bytes, unsigned len)
{
    struct x86_decoded_insn insn;
    struct emu_result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(guest_ram_write(mem, st.rip, bytes, len), 0);
    assert_int_equal(x86_decode(&dec, bytes, len, st.rip, &insn), 0);
    emu_execute(&ctx, &insn, &r);
    return r;
}

static uint64_t q(uint64_t gpa)
{
    uint64_t v = 0;
    assert_int_equal(guest_ram_read(mem, gpa, &v, 8), 0);
    return v;
}

static void cli_sti_and_the_shadow(void **unused)
{
    (void)unused;
    struct emu_result r = run("\xfb", 1);
    assert_int_equal(r.status, EMU_OK);
    assert_true(st.rflags & X86_EFLAGS_IF);
    assert_true(st.interrupt_shadow);
    assert_true(r.interrupts_enabled_now);
    assert_false(emu_interrupts_enabled(&st)); /* shadow */
    assert_int_equal(st.rip, CODE + 1);
    st.interrupt_shadow = false;
    assert_true(emu_interrupts_enabled(&st));
    r = run("\xfa", 1);
    assert_false(st.rflags & X86_EFLAGS_IF);
    assert_string_equal(r.field, "IF_virt");
    assert_int_equal(r.old_value, 1);
    assert_int_equal(r.new_value, 0);
}

static void pushf_popf_use_the_virtual_flags(void **unused)
{
    (void)unused;
    st.rflags = X86_EFLAGS_FIXED | X86_EFLAGS_IF | X86_EFLAGS_RF | (3 << 12);
    run("\x9c", 1);
    assert_int_equal(st.gpr[X86_RSP], STACK - 8);
    assert_int_equal(q(STACK - 8), X86_EFLAGS_FIXED | X86_EFLAGS_IF | (3 << 12)); /* RF cleared */
    uint64_t image = X86_EFLAGS_FIXED | X86_EFLAGS_ZF; /* IF = 0, IOPL = 0 */
    guest_ram_write(mem, STACK - 8, &image, 8);
    struct emu_result r = run("\x9d", 1);
    assert_int_equal(st.gpr[X86_RSP], STACK);
    assert_false(st.rflags & X86_EFLAGS_IF);
    assert_true(st.rflags & X86_EFLAGS_ZF);
    assert_int_equal((st.rflags >> 12) & 3, 0);
    assert_int_equal(r.old_value, 1);
    assert_int_equal(r.new_value, 0);
}

static void in_out_and_zero_extension(void **unused)
{
    (void)unused;
    st.gpr[X86_RAX] = 0x1122334455667788ULL;
    struct emu_result r = run("\xe7\x80", 2); /* out 0x80, eax */
    assert_int_equal(r.status, EMU_EXIT_IO);
    assert_int_equal(r.io.port, 0x80);
    assert_int_equal(r.io.size, 4);
    assert_memory_equal(r.io.data, "\x88\x77\x66\x55", 4);
    assert_int_equal(st.rip, CODE + 2);
    st.gpr[X86_RDX] = 0x530;
    struct x86_decoded_insn insn;
    x86_decode(&dec, "\xed", 1, st.rip, &insn); /* in eax, dx */
    guest_ram_write(mem, st.rip, "\xed", 1);
    memset(&r, 0, sizeof(r));
    emu_execute(&ctx, &insn, &r);
    assert_int_equal(r.status, EMU_EXIT_IO);
    assert_int_equal(r.io.port, 0x530);
    assert_int_equal(st.rip, CODE + 2); /* not yet */
    emu_complete_in(&ctx, &insn, &r.io, (const uint8_t *)"\xef\xbe\xad\xde", &r);
    assert_int_equal(st.gpr[X86_RAX], 0xdeadbeefULL); /* upper half cleared */
    assert_int_equal(st.rip, CODE + 3);
}

static void rep_outsb_is_chunked_and_rep_insb_completes(void **unused)
{
    (void)unused;
    for (unsigned i = 0; i < 5000; i++)
        mem->ram[0x300000 + i] = (uint8_t)i;
    st.gpr[X86_RSI] = GUEST_RAM_BASE + 0x300000;
    st.gpr[X86_RCX] = 5000;
    st.gpr[X86_RDX] = 0x534;
    struct emu_result r = run("\xf3\x6e", 2);
    assert_int_equal(r.status, EMU_EXIT_IO);
    assert_int_equal(r.io.count, 4096);
    assert_int_equal(r.io.data[4095], (uint8_t)4095);
    assert_int_equal(st.gpr[X86_RCX], 5000 - 4096);
    assert_int_equal(st.rip, CODE); /* runs again for the rest */
    r = run("\xf3\x6e", 2);
    assert_int_equal(r.io.count, 5000 - 4096);
    assert_int_equal(st.gpr[X86_RCX], 0);
    assert_int_equal(st.rip, CODE + 2);
    /* REP INSB of 3 bytes */
    st.rip = CODE;
    st.gpr[X86_RDI] = GUEST_RAM_BASE + 0x310000;
    st.gpr[X86_RCX] = 3;
    struct x86_decoded_insn insn;
    guest_ram_write(mem, st.rip, "\xf3\x6c", 2);
    x86_decode(&dec, "\xf3\x6c", 2, st.rip, &insn);
    memset(&r, 0, sizeof(r));
    emu_execute(&ctx, &insn, &r);
    assert_int_equal(r.io.count, 3);
    emu_complete_in(&ctx, &insn, &r.io, (const uint8_t *)"abc", &r);
    assert_memory_equal(mem->ram + 0x310000, "abc", 3);
    assert_int_equal(st.gpr[X86_RCX], 0);
    assert_int_equal(st.gpr[X86_RDI], GUEST_RAM_BASE + 0x310003);
    assert_int_equal(st.rip, CODE + 2);
}

static void mov_cr_checks_reserved_bits(void **unused)
{
    (void)unused;
    st.gpr[X86_RAX] = st.cr0 & ~(uint64_t)X86_CR0_PG; /* clearing PG in long mode: #GP */
    struct emu_result r = run("\x0f\x22\xc0", 3);
    assert_int_equal(r.status, EMU_EXCEPTION);
    assert_int_equal(r.vector, 13);
    st.gpr[X86_RAX] = st.cr4 | (1ULL << 40); /* reserved CR4 bit */
    r = run("\x0f\x22\xe0", 3);
    assert_int_equal(r.vector, 13);
    st.gpr[X86_RAX] = 0x40100000;
    r = run("\x0f\x22\xd8", 3); /* mov cr3, rax */
    assert_int_equal(r.status, EMU_OK);
    assert_int_equal(st.cr3, 0x40100000);
    r = run("\x0f\x20\xd9", 3); /* mov rcx, cr3 */
    assert_int_equal(st.gpr[X86_RCX], 0x40100000);
}

static void lgdt_sgdt_ltr_and_lar(void **unused)
{
    (void)unused;
    uint8_t d[10] = {0x27, 0x00};
    uint64_t base = GUEST_RAM_BASE + GUEST_GDT_OFFSET;
    memcpy(d + 2, &base, 8);
    guest_ram_write(mem, STACK, d, 10);
    st.gpr[X86_RAX] = STACK;
    assert_int_equal(run("\x0f\x01\x10", 3).status, EMU_OK); /* lgdt [rax] */
    assert_int_equal(st.gdtr.limit, 0x27);
    st.gpr[X86_RAX] = STACK + 16;
    run("\x0f\x01\x00", 3); /* sgdt [rax] */
    assert_memory_equal(mem->ram + (STACK + 16 - GUEST_RAM_BASE), d, 10);
    /* mark the platform TSS available, LTR must make it busy again */
    uint64_t tss = q(base + 0x18) & ~(2ULL << 40);
    guest_ram_write(mem, base + 0x18, &tss, 8);
    st.gpr[X86_RAX] = 0x18;
    assert_int_equal(run("\x0f\x00\xd8", 3).status, EMU_OK);
    assert_int_equal((q(base + 0x18) >> 40) & 0xF, 0xB);
    assert_int_equal(st.tr.selector, 0x18);
    /* LAR on the code selector */
    st.gpr[X86_RCX] = 0x08;
    run("\x0f\x02\xc1", 3); /* lar eax, ecx */
    assert_true(st.rflags & X86_EFLAGS_ZF);
    assert_int_equal(st.gpr[X86_RAX], 0x00A09B00); /* masked by 00F0FF00H */
    st.gpr[X86_RCX] = 0x80;                        /* beyond the GDT limit */
    run("\x0f\x02\xc1", 3);
    assert_false(st.rflags & X86_EFLAGS_ZF);
}

static void msrs_and_unknown_msr(void **unused)
{
    (void)unused;
    st.gpr[X86_RCX] = 0xC0000082;
    st.gpr[X86_RAX] = 0x81000000;
    st.gpr[X86_RDX] = 0xffffffff;
    assert_int_equal(run("\x0f\x30", 2).status, EMU_OK);
    assert_int_equal(st.lstar, 0xffffffff81000000ULL);
    st.gpr[X86_RCX] = 0x12345;
    struct emu_result r = run("\x0f\x32", 2);
    assert_int_equal(r.status, EMU_EXCEPTION);
    assert_int_equal(r.vector, 13);
    st.gpr[X86_RCX] = 0xC0000082;
    st.gpr[X86_RDX] = 0x12340000; /* 0x1234000081000000: non-canonical */
    assert_int_equal(run("\x0f\x30", 2).vector, 13);
}

static void int_n_builds_the_exact_frame(void **unused)
{
    (void)unused;
    st.rflags = X86_EFLAGS_FIXED | X86_EFLAGS_IF | X86_EFLAGS_CF;
    st.gpr[X86_RSP] = STACK - 8; /* misaligned: the CPU aligns to 16 first */
    struct emu_result r = run("\xcd\x21", 2);
    assert_int_equal(r.status, EMU_OK);
    uint64_t stub = GUEST_RAM_BASE + GUEST_STUBS_OFFSET + 16 * 0x21;
    assert_int_equal(st.rip, stub);
    uint64_t f = STACK - 16 - 40;
    assert_int_equal(st.gpr[X86_RSP], f);
    assert_int_equal(q(f + 0), CODE + 2);         /* RIP */
    assert_int_equal(q(f + 8), GUEST_SEL_CODE64); /* CS */
    assert_int_equal(q(f + 16), X86_EFLAGS_FIXED | X86_EFLAGS_IF | X86_EFLAGS_CF);
    assert_int_equal(q(f + 24), STACK - 8);      /* old RSP */
    assert_int_equal(q(f + 32), GUEST_SEL_DATA); /* SS */
    assert_false(st.rflags & X86_EFLAGS_IF);     /* interrupt gate */
    /* IRETQ back */
    run("\x48\xcf", 2);
    assert_int_equal(st.rip, CODE + 2);
    assert_int_equal(st.gpr[X86_RSP], STACK - 8);
    assert_true(st.rflags & X86_EFLAGS_IF);
}

static void faults_during_delivery_escalate_to_shutdown(void **unused)
{
    (void)unused;
    st.idtr.limit = 0; /* every vector beyond the limit: #GP, then #DF, then shutdown */
    struct emu_result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(emu_deliver_event(&ctx, EMU_EVENT_EXCEPTION, 0, false, 0, &r), EMU_SHUTDOWN);
    /* a not-present #PF gate with a present #DF gate: delivered as #DF */
    st.idtr.limit = 256 * 16 - 1;
    uint64_t gate = q(st.idtr.base + 14 * 16) & ~(1ULL << 47);
    guest_ram_write(mem, st.idtr.base + 14 * 16, &gate, 8);
    assert_int_equal(emu_deliver_event(&ctx, EMU_EVENT_EXCEPTION, 14, true, 2, &r), EMU_OK);
    assert_int_equal(st.rip, GUEST_RAM_BASE + GUEST_STUBS_OFFSET + 16 * 8);
}

static void cpuid_syscall_and_far_jump(void **unused)
{
    (void)unused;
    st.gpr[X86_RAX] = 0;
    run("\x0f\xa2", 2);
    char vendor[12];
    memcpy(vendor, &st.gpr[X86_RBX], 4);
    memcpy(vendor + 4, &st.gpr[X86_RDX], 4);
    memcpy(vendor + 8, &st.gpr[X86_RCX], 4);
    assert_memory_equal(vendor, EMU_CPUID_VENDOR, 12);
    /* SYSCALL without EFER.SCE: #UD; with it: RCX, R11, LSTAR */
    st.rip = CODE;
    st.efer &= ~1ULL;
    assert_int_equal(run("\x0f\x05", 2).vector, 6);
    st.efer |= 1;
    st.lstar = CODE + 0x100;
    st.sfmask = X86_EFLAGS_IF;
    st.rflags |= X86_EFLAGS_IF;
    assert_int_equal(run("\x0f\x05", 2).status, EMU_OK);
    assert_int_equal(st.gpr[X86_RCX], CODE + 2);
    assert_true(st.gpr[X86_R11] & X86_EFLAGS_IF);
    assert_false(st.rflags & X86_EFLAGS_IF);
    assert_int_equal(st.rip, CODE + 0x100);
    /* JMP far [rax] to 0x08:CODE+0x40 */
    uint8_t fp[10];
    uint64_t target = CODE + 0x40;
    uint16_t sel = 0x08;
    memcpy(fp, &target, 8);
    memcpy(fp + 8, &sel, 2);
    guest_ram_write(mem, STACK, fp, 10);
    st.gpr[X86_RAX] = STACK;
    assert_int_equal(run("\x48\xff\x28", 3).status, EMU_OK);
    assert_int_equal(st.rip, CODE + 0x40);
    assert_int_equal(st.cs.selector, 0x08);
    sel = 0x10; /* a data segment is no jump target: #GP(0x10) */
    guest_ram_write(mem, STACK + 8, &sel, 2);
    struct emu_result r = run("\x48\xff\x28", 3);
    assert_int_equal(r.vector, 13);
    assert_int_equal(r.error_code, 0x10);
}

static void mov_to_and_from_ds(void **unused)
{
    (void)unused;
    st.gpr[X86_RAX] = 0x10;
    assert_int_equal(run("\x8e\xd8", 2).status, EMU_OK); /* mov ds, eax */
    st.ds.selector = 0;
    st.gpr[X86_RAX] = 0x10;
    run("\x8e\xd8", 2);
    assert_int_equal(st.ds.selector, 0x10);
    run("\x8c\xdb", 2); /* mov ebx, ds */
    assert_int_equal(st.gpr[X86_RBX], 0x10);
    st.gpr[X86_RAX] = 0x08 | 0; /* code segment (readable) is allowed in DS */
    assert_int_equal(run("\x8e\xd8", 2).status, EMU_OK);
    st.gpr[X86_RAX] = 0x18; /* TSS: #GP(0x18) */
    struct emu_result r = run("\x8e\xd8", 2);
    assert_int_equal(r.vector, 13);
    assert_int_equal(r.error_code, 0x18);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(cli_sti_and_the_shadow, reset),
        cmocka_unit_test_setup(pushf_popf_use_the_virtual_flags, reset),
        cmocka_unit_test_setup(in_out_and_zero_extension, reset),
        cmocka_unit_test_setup(rep_outsb_is_chunked_and_rep_insb_completes, reset),
        cmocka_unit_test_setup(mov_cr_checks_reserved_bits, reset),
        cmocka_unit_test_setup(lgdt_sgdt_ltr_and_lar, reset),
        cmocka_unit_test_setup(msrs_and_unknown_msr, reset),
        cmocka_unit_test_setup(int_n_builds_the_exact_frame, reset),
        cmocka_unit_test_setup(faults_during_delivery_escalate_to_shutdown, reset),
        cmocka_unit_test_setup(cpuid_syscall_and_far_jump, reset),
        cmocka_unit_test_setup(mov_to_and_from_ds, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

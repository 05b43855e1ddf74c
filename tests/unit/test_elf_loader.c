/* test_elf_loader.c - elf_parse/elf_load/elf_read_file on ELF images built in memory.
 *
 * Each test starts from a valid minimal guest image (one R+X PT_LOAD at GUEST_IMAGE_BASE,
 * optionally a .vmlab_expect section) and breaks exactly one thing, then checks the exact
 * return code and that the one-line reason names the problem.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/elf_loader.h"

/* File layout of the test image. Room for 20 program headers (more than the loader's limit). */
#define PH_OFF 64u
#define PH_ROOM 20u
#define CODE_OFF 0x500u
#define CODE_SIZE 16u
#define EXPECT_OFF 0x600u
#define STRTAB_OFF 0x680u
#define SH_OFF 0x700u
#define IMG_SIZE 0x800u
#define IMAGE_END (GUEST_STACK_TOP - GUEST_STACK_RESERVE)

static const char expect_data[] = "*|xfail||why\0ending|exit:3";
/* Section names: index 1 ".vmlab_expect", index 15 ".shstrtab". */
static const char strtab_data[] = "\0.vmlab_expect\0.shstrtab";

struct test_image {
    _Alignas(8) uint8_t buf[IMG_SIZE];
    size_t size;
    char err[256];
    struct elf_image img;
};

static Elf64_Ehdr *ehdr(struct test_image *t)
{
    return (Elf64_Ehdr *)t->buf;
}

static Elf64_Phdr *phdr(struct test_image *t, unsigned i)
{
    return (Elf64_Phdr *)(t->buf + PH_OFF) + i;
}

static Elf64_Shdr *shdr(struct test_image *t, unsigned i)
{
    return (Elf64_Shdr *)(t->buf + SH_OFF) + i;
}

static void build(struct test_image *t, bool with_sections)
{
    memset(t, 0, sizeof(*t));
    t->size = IMG_SIZE;
    Elf64_Ehdr *eh = ehdr(t);
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_entry = GUEST_IMAGE_BASE + 4;
    eh->e_phoff = PH_OFF;
    eh->e_ehsize = sizeof(Elf64_Ehdr);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = 1;
    *phdr(t, 0) = (Elf64_Phdr){.p_type = PT_LOAD,
                               .p_flags = PF_R | PF_X,
                               .p_offset = CODE_OFF,
                               .p_vaddr = GUEST_IMAGE_BASE,
                               .p_paddr = GUEST_IMAGE_BASE,
                               .p_filesz = CODE_SIZE,
                               .p_memsz = 0x1000,
                               .p_align = 0x1000};
    for (unsigned i = 0; i < CODE_SIZE; i++)
        t->buf[CODE_OFF + i] = (uint8_t)(0xc0 + i);
    if (!with_sections)
        return;
    memcpy(t->buf + EXPECT_OFF, expect_data, sizeof(expect_data));
    memcpy(t->buf + STRTAB_OFF, strtab_data, sizeof(strtab_data));
    eh->e_shoff = SH_OFF;
    eh->e_shentsize = sizeof(Elf64_Shdr);
    eh->e_shnum = 3;
    eh->e_shstrndx = 2;
    *shdr(t, 1) = (Elf64_Shdr){.sh_name = 1,
                               .sh_type = SHT_PROGBITS,
                               .sh_offset = EXPECT_OFF,
                               .sh_size = sizeof(expect_data)};
    *shdr(t, 2) = (Elf64_Shdr){.sh_name = 15,
                               .sh_type = SHT_STRTAB,
                               .sh_offset = STRTAB_OFF,
                               .sh_size = sizeof(strtab_data)};
}

static int parse(struct test_image *t)
{
    t->err[0] = 0;
    return elf_parse(t->buf, t->size, &t->img, t->err, sizeof(t->err));
}

/* The parse fails with `rc` and a reason containing `needle` (on one line). */
static void check_fails(struct test_image *t, int rc, const char *needle)
{
    int got = parse(t);
    if (got != rc || !strstr(t->err, needle) || strchr(t->err, '\n'))
        fail_msg("expected %d with \"%s\", got %d: \"%s\"", rc, needle, got, t->err);
}

static void test_valid_minimal(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    assert_int_equal(parse(&t), 0);
    assert_int_equal(t.img.entry, GUEST_IMAGE_BASE + 4);
    assert_int_equal(t.img.segment_count, 1);
    assert_int_equal(t.img.segments[0].vaddr, GUEST_IMAGE_BASE);
    assert_int_equal(t.img.segments[0].filesz, CODE_SIZE);
    assert_int_equal(t.img.segments[0].memsz, 0x1000);
    assert_int_equal(t.img.segments[0].offset, CODE_OFF);
    assert_int_equal(t.img.segments[0].flags, PF_R | PF_X);
    assert_null(t.img.expect);
    assert_int_equal(t.img.expect_size, 0);
}

static void test_valid_with_expect(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, true);
    assert_int_equal(parse(&t), 0);
    assert_ptr_equal(t.img.expect, (const char *)t.buf + EXPECT_OFF);
    assert_int_equal(t.img.expect_size, sizeof(expect_data));
    assert_memory_equal(t.img.expect, expect_data, sizeof(expect_data));
}

static void test_sections_without_expect(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, true);
    shdr(&t, 1)->sh_name = 15; /* now two sections named .shstrtab */
    assert_int_equal(parse(&t), 0);
    assert_null(t.img.expect);
}

static void test_header_identity(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    t.size = 10;
    check_fails(&t, -ENOEXEC, "not an ELF");
    build(&t, false);
    t.size = 40; /* identity fine, header cut */
    check_fails(&t, -ENOEXEC, "truncated");
    build(&t, false);
    t.buf[1] = 'F';
    check_fails(&t, -ENOEXEC, "magic");
    build(&t, false);
    t.buf[EI_CLASS] = ELFCLASS32;
    check_fails(&t, -ENOEXEC, "32-bit ELF (ELFCLASS32)");
    build(&t, false);
    t.buf[EI_CLASS] = 7;
    check_fails(&t, -ENOEXEC, "class 7");
    build(&t, false);
    t.buf[EI_DATA] = ELFDATA2MSB;
    check_fails(&t, -ENOEXEC, "big-endian");
    build(&t, false);
    t.buf[EI_VERSION] = 2;
    check_fails(&t, -ENOEXEC, "version 2");
    build(&t, false);
    ehdr(&t)->e_version = 0;
    check_fails(&t, -ENOEXEC, "version");
}

static void test_header_kind(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    ehdr(&t)->e_machine = EM_AARCH64;
    check_fails(&t, -ENOEXEC, "machine 183");
    build(&t, false);
    ehdr(&t)->e_type = ET_DYN;
    check_fails(&t, -ENOEXEC, "position-independent (ET_DYN)");
    build(&t, false);
    ehdr(&t)->e_type = ET_REL;
    check_fails(&t, -ENOEXEC, "ELF type 1");
    build(&t, false);
    ehdr(&t)->e_type = ET_CORE;
    check_fails(&t, -ENOEXEC, "ET_EXEC");
}

static void test_program_headers(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    ehdr(&t)->e_phentsize = 32;
    check_fails(&t, -EINVAL, "program header size 32");
    build(&t, false);
    ehdr(&t)->e_phnum = 0;
    check_fails(&t, -EINVAL, "no loadable");
    build(&t, false);
    ehdr(&t)->e_phoff = IMG_SIZE - 8;
    check_fails(&t, -EINVAL, "program headers");
    build(&t, false);
    ehdr(&t)->e_phoff = UINT64_MAX - 16; /* offset + size wraps around */
    check_fails(&t, -EINVAL, "outside the file");
    build(&t, false);
    ehdr(&t)->e_phnum = 0xffff; /* 3.6 MB of headers in a 2 KiB file */
    check_fails(&t, -EINVAL, "outside the file");
}

static void test_no_load_segment(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    phdr(&t, 0)->p_type = PT_NOTE;
    check_fails(&t, -EINVAL, "no loadable (PT_LOAD)");
}

static void test_too_many_segments(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    Elf64_Phdr first = *phdr(&t, 0);
    for (unsigned i = 0; i < ELF_LOADER_MAX_SEGMENTS + 1; i++) {
        *phdr(&t, i) = first;
        phdr(&t, i)->p_vaddr = GUEST_IMAGE_BASE + 0x1000ULL * i;
    }
    ehdr(&t)->e_phnum = ELF_LOADER_MAX_SEGMENTS;
    assert_int_equal(parse(&t), 0); /* exactly the limit is fine */
    assert_int_equal(t.img.segment_count, ELF_LOADER_MAX_SEGMENTS);
    ehdr(&t)->e_phnum = ELF_LOADER_MAX_SEGMENTS + 1;
    check_fails(&t, -EINVAL, "more than 16");
}

static void test_segment_sizes(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    phdr(&t, 0)->p_filesz = 0x2000; /* > memsz */
    check_fails(&t, -EINVAL, "file size 0x2000 exceeds memory size 0x1000");
    build(&t, false);
    phdr(&t, 0)->p_offset = IMG_SIZE - 8; /* 16 bytes from 8 before the end */
    check_fails(&t, -EINVAL, "outside the 2048-byte file");
    build(&t, false);
    phdr(&t, 0)->p_offset = UINT64_MAX - 4; /* offset + filesz wraps */
    check_fails(&t, -EINVAL, "outside the");
    build(&t, false);
    phdr(&t, 0)->p_filesz = UINT64_MAX;
    phdr(&t, 0)->p_memsz = UINT64_MAX;
    check_fails(&t, -EINVAL, "outside the");
}

static void test_segment_placement(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    phdr(&t, 0)->p_vaddr = 0x1000;
    ehdr(&t)->e_entry = 0x1000;
    check_fails(&t, -EINVAL, "segment 0 at 0x1000");
    assert_non_null(strstr(t.err, "outside guest RAM"));
    assert_non_null(strstr(t.err, "[0x40200000, 0x43f00000)"));
    /* The platform area just below the image base is not for the image. */
    build(&t, false);
    phdr(&t, 0)->p_vaddr = GUEST_IMAGE_BASE - 0x1000;
    check_fails(&t, -EINVAL, "outside guest RAM");
    /* vaddr + memsz wraps around 2^64. */
    build(&t, false);
    phdr(&t, 0)->p_vaddr = UINT64_MAX - 0xfff;
    phdr(&t, 0)->p_memsz = 0x2000;
    check_fails(&t, -EINVAL, "outside guest RAM");
    /* Huge memsz from a valid start. */
    build(&t, false);
    phdr(&t, 0)->p_memsz = UINT64_MAX - 0x10;
    check_fails(&t, -EINVAL, "outside guest RAM");
    /* Runs into the stack reserve by one page. */
    build(&t, false);
    phdr(&t, 0)->p_vaddr = IMAGE_END - 0x800;
    ehdr(&t)->e_entry = IMAGE_END - 0x800;
    check_fails(&t, -EINVAL, "outside guest RAM");
    /* Ending exactly at the stack reserve is allowed. */
    build(&t, false);
    phdr(&t, 0)->p_vaddr = IMAGE_END - 0x1000;
    ehdr(&t)->e_entry = IMAGE_END - 0x1000;
    assert_int_equal(parse(&t), 0);
}

static void test_overlap(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    ehdr(&t)->e_phnum = 2;
    /* Same page, disjoint bytes: [base, base+0x800) and [base+0x800, base+0x1000). */
    phdr(&t, 0)->p_memsz = 0x800;
    *phdr(&t, 1) = *phdr(&t, 0);
    phdr(&t, 1)->p_vaddr = GUEST_IMAGE_BASE + 0x800;
    phdr(&t, 1)->p_flags = PF_R | PF_W;
    assert_int_equal(parse(&t), 0);
    assert_int_equal(t.img.segment_count, 2);
    /* One byte of overlap. */
    phdr(&t, 1)->p_vaddr = GUEST_IMAGE_BASE + 0x7ff;
    check_fails(&t, -EINVAL, "segment 1 at 0x402007ff overlaps");
    /* Second segment entirely inside the first. */
    phdr(&t, 0)->p_memsz = 0x3000;
    phdr(&t, 1)->p_vaddr = GUEST_IMAGE_BASE + 0x1000;
    check_fails(&t, -EINVAL, "overlaps");
    /* Second segment starting below and covering the first. */
    phdr(&t, 0)->p_vaddr = GUEST_IMAGE_BASE + 0x1000;
    phdr(&t, 0)->p_memsz = 0x10;
    ehdr(&t)->e_entry = GUEST_IMAGE_BASE + 0x1000;
    phdr(&t, 1)->p_vaddr = GUEST_IMAGE_BASE;
    phdr(&t, 1)->p_memsz = 0x4000;
    check_fails(&t, -EINVAL, "overlaps");
}

static void test_dynamic(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    ehdr(&t)->e_phnum = 2;
    *phdr(&t, 1) = (Elf64_Phdr){.p_type = PT_INTERP, .p_offset = CODE_OFF, .p_filesz = 4};
    check_fails(&t, -ENOEXEC, "dynamically linked");
    phdr(&t, 1)->p_type = PT_DYNAMIC;
    check_fails(&t, -ENOEXEC, "dynamically linked");
}

static void test_entry(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, false);
    ehdr(&t)->e_entry = GUEST_IMAGE_BASE + 0x1000; /* one past the end */
    check_fails(&t, -EINVAL, "entry point 0x40201000");
    build(&t, false);
    ehdr(&t)->e_entry = 0;
    check_fails(&t, -EINVAL, "entry point");
    build(&t, false);
    phdr(&t, 0)->p_flags = PF_R | PF_W; /* entry inside, but not executable */
    check_fails(&t, -EINVAL, "not inside an executable segment");
    /* Entry in the second, executable segment. */
    build(&t, false);
    ehdr(&t)->e_phnum = 2;
    phdr(&t, 0)->p_flags = PF_R;
    *phdr(&t, 1) = *phdr(&t, 0);
    phdr(&t, 1)->p_vaddr = GUEST_IMAGE_BASE + 0x1000;
    phdr(&t, 1)->p_flags = PF_R | PF_X;
    ehdr(&t)->e_entry = GUEST_IMAGE_BASE + 0x1ff0;
    assert_int_equal(parse(&t), 0);
}

static void test_section_headers(void **state)
{
    (void)state;
    struct test_image t;
    build(&t, true);
    ehdr(&t)->e_shentsize = 40;
    check_fails(&t, -EINVAL, "section header size 40");
    build(&t, true);
    ehdr(&t)->e_shoff = IMG_SIZE - 64;
    check_fails(&t, -EINVAL, "section headers (3 at offset 0x7c0) lie outside");
    build(&t, true);
    ehdr(&t)->e_shoff = UINT64_MAX - 64;
    check_fails(&t, -EINVAL, "outside the file");
    build(&t, true);
    ehdr(&t)->e_shstrndx = 3;
    check_fails(&t, -EINVAL, "section name table index 3");
    build(&t, true);
    shdr(&t, 2)->sh_offset = UINT64_MAX - 2;
    check_fails(&t, -EINVAL, "section name table");
    build(&t, true);
    shdr(&t, 1)->sh_type = SHT_NOBITS;
    check_fails(&t, -EINVAL, ".vmlab_expect has type 8");
    build(&t, true);
    shdr(&t, 1)->sh_size = IMG_SIZE;
    check_fails(&t, -EINVAL, ".vmlab_expect [0x600, +0x800) lies outside");
    /* A name offset past the string table, or a name running off its end, is just not a
     * match (and never read out of bounds). */
    build(&t, true);
    shdr(&t, 1)->sh_name = 1000;
    assert_int_equal(parse(&t), 0);
    assert_null(t.img.expect);
    build(&t, true);
    shdr(&t, 2)->sh_size = 10; /* cuts ".vmlab_expect" */
    assert_int_equal(parse(&t), 0);
    assert_null(t.img.expect);
    /* e_shoff == 0: no sections looked at, whatever the other fields say. */
    build(&t, true);
    ehdr(&t)->e_shoff = 0;
    ehdr(&t)->e_shentsize = 1;
    assert_int_equal(parse(&t), 0);
    assert_null(t.img.expect);
}

static void test_load(void **state)
{
    (void)state;
    struct guest_memory *mem;
    int rc = guest_memory_create(0, &mem);
    if (rc < 0)
        fail_msg("guest_memory_create: %d", rc);
    struct test_image t;
    build(&t, false);
    ehdr(&t)->e_phnum = 2;
    *phdr(&t, 1) = *phdr(&t, 0);
    phdr(&t, 1)->p_vaddr = GUEST_IMAGE_BASE + 0x3000;
    phdr(&t, 1)->p_flags = PF_R | PF_W;
    phdr(&t, 1)->p_filesz = 4;
    phdr(&t, 1)->p_memsz = 0x20;
    assert_int_equal(parse(&t), 0);
    uint8_t *ram = guest_ram_ptr(mem, GUEST_IMAGE_BASE, 0x4000);
    assert_non_null(ram);
    memset(ram, 0xaa, 0x4000); /* stale contents the loader must overwrite */
    assert_int_equal(elf_load(&t.img, t.buf, t.size, mem, t.err, sizeof(t.err)), 0);
    assert_memory_equal(ram, t.buf + CODE_OFF, CODE_SIZE);
    for (unsigned i = CODE_SIZE; i < 0x1000; i++)
        assert_int_equal(ram[i], 0);     /* .bss part zeroed */
    assert_int_equal(ram[0x1000], 0xaa); /* between segments: untouched */
    assert_memory_equal(ram + 0x3000, t.buf + CODE_OFF, 4);
    for (unsigned i = 4; i < 0x20; i++)
        assert_int_equal(ram[0x3000 + i], 0);
    assert_int_equal(ram[0x3020], 0xaa); /* past memsz: untouched */
    /* An image that was not validated (or a size that shrank) is refused, not loaded. */
    t.img.segments[0].vaddr = GUEST_RAM_END - 0x10;
    assert_int_equal(elf_load(&t.img, t.buf, t.size, mem, t.err, sizeof(t.err)), -EINVAL);
    guest_memory_destroy(mem);
}

static void test_read_file(void **state)
{
    (void)state;
    char err[256];
    uint8_t *data = (uint8_t *)"x";
    size_t size = 1;
    assert_int_equal(
        elf_read_file("/nonexistent/vmlab.elf", 1 << 20, &data, &size, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "No such file or directory"));
    assert_null(data);
    assert_int_equal(size, 0);
    assert_int_equal(elf_read_file("/", 1 << 20, &data, &size, err, sizeof(err)), -EISDIR);
    assert_non_null(strstr(err, "not a regular file"));

    char path[] = "/tmp/vmlab-test-elf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    struct test_image t;
    build(&t, true);
    assert_int_equal(write(fd, t.buf, t.size), (ssize_t)t.size);
    close(fd);
    assert_int_equal(elf_read_file(path, t.size - 1, &data, &size, err, sizeof(err)), -EFBIG);
    assert_non_null(strstr(err, "2048 bytes"));
    assert_int_equal(elf_read_file(path, t.size, &data, &size, err, sizeof(err)), 0);
    assert_int_equal(size, t.size);
    assert_memory_equal(data, t.buf, t.size);
    struct elf_image img;
    assert_int_equal(elf_parse(data, size, &img, err, sizeof(err)), 0);
    assert_int_equal(img.expect_size, sizeof(expect_data));
    free(data);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_minimal),
        cmocka_unit_test(test_valid_with_expect),
        cmocka_unit_test(test_sections_without_expect),
        cmocka_unit_test(test_header_identity),
        cmocka_unit_test(test_header_kind),
        cmocka_unit_test(test_program_headers),
        cmocka_unit_test(test_no_load_segment),
        cmocka_unit_test(test_too_many_segments),
        cmocka_unit_test(test_segment_sizes),
        cmocka_unit_test(test_segment_placement),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_entry),
        cmocka_unit_test(test_section_headers),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

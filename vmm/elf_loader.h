/* elf_loader.h - load a guest ELF64 image into guest RAM, validating everything first.
 *
 * A guest is a freestanding, static, non-PIE x86-64 ELF64 executable (ET_EXEC, EM_X86_64,
 * ELFCLASS64, little endian) whose PT_LOAD segments lie inside
 * [GUEST_IMAGE_BASE, GUEST_STACK_TOP - GUEST_STACK_RESERVE), do not overlap, have
 * p_filesz <= p_memsz and file ranges inside the file, and whose entry point lies in an
 * executable segment. Every malformed image is a clear error (a message and -EINVAL/-ENOEXEC),
 * never a crash: the parser only reads through bounds-checked helpers. Fuzzed by
 * tests/fuzz/fuzz_elf_loader.c.
 */
#ifndef VMLAB_ELF_LOADER_H
#define VMLAB_ELF_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "guest_memory.h"

#define ELF_LOADER_MAX_SEGMENTS 16
#define ELF_LOADER_MAX_FILE_SIZE (GUEST_RAM_SIZE) /* no guest image can be larger than RAM */

struct elf_segment {
    uint64_t vaddr, memsz, filesz, offset;
    uint32_t flags; /* PF_R | PF_W | PF_X */
};

struct elf_image {
    uint64_t entry;
    unsigned segment_count;
    struct elf_segment segments[ELF_LOADER_MAX_SEGMENTS];
    /* Contents of the ".vmlab_expect" section (NUL-separated records, see
     * guest_tests/lib/guest.h GUEST_EXPECT), or NULL/0 if absent. Points into the buffer the
     * image was parsed from. */
    const char *expect;
    size_t expect_size;
};

/* Parse and validate an image held in memory. 0, or -ENOEXEC / -EINVAL with a one-line
 * reason in err ("segment 2 [0x1000, 0x2000) lies outside guest RAM"). */
int elf_parse(const uint8_t *data, size_t size, struct elf_image *out, char *err, size_t errsize);

/* Copy the parsed segments into guest RAM (zeroing the .bss part). */
int elf_load(const struct elf_image *img, const uint8_t *data, size_t size,
             struct guest_memory *mem, char *err, size_t errsize);

/* Read a whole file (at most max bytes). 0, or -errno with a reason. *data is malloc'ed. */
int elf_read_file(const char *path, size_t max, uint8_t **data, size_t *size, char *err,
                  size_t errsize);

#endif

/* elf_loader.c - parse, validate and load a guest ELF64 image (see elf_loader.h).
 *
 * Every field read from the file goes through a bounds check first; sizes and offsets are
 * added only after checking they cannot overflow. Fuzzed by tests/fuzz/fuzz_elf_loader.c.
 */
#define _GNU_SOURCE
#include "elf_loader.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE_END (GUEST_STACK_TOP - GUEST_STACK_RESERVE)

static int fail(char *err, size_t size, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return rc;
}

/* [off, off+len) inside [0, size) without overflow. */
static bool in_file(uint64_t off, uint64_t len, size_t size)
{
    return off <= size && len <= size - off;
}

static int parse_header(const uint8_t *data, size_t size, Elf64_Ehdr *eh, char *err, size_t es)
{
    if (size < EI_NIDENT || memcmp(data, ELFMAG, SELFMAG) != 0)
        return fail(err, es, -ENOEXEC, "not an ELF file (bad magic)");
    if (data[EI_CLASS] == ELFCLASS32)
        return fail(err, es, -ENOEXEC, "32-bit ELF (ELFCLASS32): vmlab guests are 64-bit");
    if (data[EI_CLASS] != ELFCLASS64)
        return fail(err, es, -ENOEXEC, "unknown ELF class %u", data[EI_CLASS]);
    if (size < sizeof(*eh))
        return fail(err, es, -ENOEXEC, "truncated ELF header (%zu bytes)", size);
    memcpy(eh, data, sizeof(*eh));
    if (data[EI_DATA] != ELFDATA2LSB)
        return fail(err, es, -ENOEXEC, "big-endian ELF: x86-64 guests are little endian");
    if (data[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
        return fail(err, es, -ENOEXEC, "unknown ELF version %u/%u (expected EV_CURRENT)",
                    data[EI_VERSION], eh->e_version);
    if (eh->e_machine != EM_X86_64)
        return fail(err, es, -ENOEXEC, "ELF machine %u is not x86-64 (%u)", eh->e_machine,
                    EM_X86_64);
    if (eh->e_type == ET_DYN)
        return fail(err, es, -ENOEXEC,
                    "position-independent (ET_DYN) image: guests must be static non-PIE");
    if (eh->e_type != ET_EXEC)
        return fail(err, es, -ENOEXEC, "ELF type %u is not an executable (ET_EXEC)", eh->e_type);
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return fail(err, es, -EINVAL, "program header size %u, expected %zu", eh->e_phentsize,
                    sizeof(Elf64_Phdr));
    if (eh->e_phnum == 0)
        return fail(err, es, -EINVAL, "no loadable (PT_LOAD) segment: no program headers");
    if (!in_file(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), size))
        return fail(err, es, -EINVAL, "program headers (%u at offset %#llx) lie outside the file",
                    eh->e_phnum, (unsigned long long)eh->e_phoff);
    return 0;
}

static int parse_segments(const uint8_t *data, size_t size, const Elf64_Ehdr *eh,
                          struct elf_image *img, char *err, size_t es)
{
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, data + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
            return fail(err, es, -ENOEXEC,
                        "dynamically linked image (segment %u): guests must "
                        "be static",
                        i);
        if (ph.p_type != PT_LOAD)
            continue;
        if (img->segment_count == ELF_LOADER_MAX_SEGMENTS)
            return fail(err, es, -EINVAL, "more than %d loadable segments",
                        ELF_LOADER_MAX_SEGMENTS);
        if (ph.p_filesz > ph.p_memsz)
            return fail(err, es, -EINVAL, "segment %u: file size %#llx exceeds memory size %#llx",
                        i, (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_memsz);
        if (!in_file(ph.p_offset, ph.p_filesz, size))
            return fail(err, es, -EINVAL,
                        "segment %u: file range [%#llx, +%#llx) lies outside "
                        "the %zu-byte file",
                        i, (unsigned long long)ph.p_offset, (unsigned long long)ph.p_filesz, size);
        if (ph.p_vaddr < GUEST_IMAGE_BASE || ph.p_memsz > IMAGE_END - GUEST_IMAGE_BASE ||
            ph.p_vaddr > IMAGE_END - ph.p_memsz)
            return fail(err, es, -EINVAL,
                        "segment %u at %#llx (size %#llx) lies outside guest RAM for the "
                        "image [%#llx, %#llx)",
                        i, (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_memsz,
                        (unsigned long long)GUEST_IMAGE_BASE, (unsigned long long)IMAGE_END);
        for (unsigned j = 0; j < img->segment_count; j++) {
            const struct elf_segment *o = &img->segments[j];
            if (ph.p_memsz && o->memsz && ph.p_vaddr < o->vaddr + o->memsz &&
                o->vaddr < ph.p_vaddr + ph.p_memsz)
                return fail(err, es, -EINVAL,
                            "segment %u at %#llx overlaps an earlier segment "
                            "at %#llx",
                            i, (unsigned long long)ph.p_vaddr, (unsigned long long)o->vaddr);
        }
        img->segments[img->segment_count++] = (struct elf_segment){.vaddr = ph.p_vaddr,
                                                                   .memsz = ph.p_memsz,
                                                                   .filesz = ph.p_filesz,
                                                                   .offset = ph.p_offset,
                                                                   .flags = ph.p_flags};
    }
    if (img->segment_count == 0)
        return fail(err, es, -EINVAL, "no loadable (PT_LOAD) segment");
    for (unsigned j = 0; j < img->segment_count; j++) {
        const struct elf_segment *s = &img->segments[j];
        if ((s->flags & PF_X) && img->entry >= s->vaddr && img->entry - s->vaddr < s->memsz)
            return 0;
    }
    return fail(err, es, -EINVAL, "entry point %#llx is not inside an executable segment",
                (unsigned long long)img->entry);
}

/* Optional: find ".vmlab_expect" through the section headers. Malformed section headers are
 * an error too: a half-valid file is not loaded. */
static int parse_sections(const uint8_t *data, size_t size, const Elf64_Ehdr *eh,
                          struct elf_image *img, char *err, size_t es)
{
    if (eh->e_shoff == 0 || eh->e_shnum == 0)
        return 0;
    if (eh->e_shentsize != sizeof(Elf64_Shdr))
        return fail(err, es, -EINVAL, "section header size %u, expected %zu", eh->e_shentsize,
                    sizeof(Elf64_Shdr));
    if (!in_file(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), size))
        return fail(err, es, -EINVAL, "section headers (%u at offset %#llx) lie outside the file",
                    eh->e_shnum, (unsigned long long)eh->e_shoff);
    if (eh->e_shstrndx >= eh->e_shnum)
        return fail(err, es, -EINVAL, "section name table index %u out of range (%u sections)",
                    eh->e_shstrndx, eh->e_shnum);
    Elf64_Shdr strtab;
    memcpy(&strtab, data + eh->e_shoff + (uint64_t)eh->e_shstrndx * sizeof(Elf64_Shdr),
           sizeof(strtab));
    if (!in_file(strtab.sh_offset, strtab.sh_size, size))
        return fail(err, es, -EINVAL,
                    "section name table [%#llx, +%#llx) lies outside the %zu-byte file",
                    (unsigned long long)strtab.sh_offset, (unsigned long long)strtab.sh_size, size);
    static const char wanted[] = ".vmlab_expect";
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        Elf64_Shdr sh;
        memcpy(&sh, data + eh->e_shoff + (uint64_t)i * sizeof(sh), sizeof(sh));
        if (sh.sh_name >= strtab.sh_size || strtab.sh_size - sh.sh_name < sizeof(wanted) ||
            memcmp(data + strtab.sh_offset + sh.sh_name, wanted, sizeof(wanted)) != 0)
            continue;
        if (sh.sh_type != SHT_PROGBITS)
            return fail(err, es, -EINVAL, "section .vmlab_expect has type %u, not SHT_PROGBITS",
                        sh.sh_type);
        if (!in_file(sh.sh_offset, sh.sh_size, size))
            return fail(err, es, -EINVAL,
                        "section .vmlab_expect [%#llx, +%#llx) lies outside the %zu-byte file",
                        (unsigned long long)sh.sh_offset, (unsigned long long)sh.sh_size, size);
        img->expect = (const char *)data + sh.sh_offset;
        img->expect_size = sh.sh_size;
    }
    return 0;
}

int elf_parse(const uint8_t *data, size_t size, struct elf_image *img, char *err, size_t es)
{
    memset(img, 0, sizeof(*img));
    Elf64_Ehdr eh;
    int rc = parse_header(data, size, &eh, err, es);
    if (rc < 0)
        return rc;
    img->entry = eh.e_entry;
    rc = parse_segments(data, size, &eh, img, err, es);
    if (rc < 0)
        return rc;
    return parse_sections(data, size, &eh, img, err, es);
}

int elf_load(const struct elf_image *img, const uint8_t *data, size_t size,
             struct guest_memory *mem, char *err, size_t es)
{
    for (unsigned i = 0; i < img->segment_count; i++) {
        const struct elf_segment *s = &img->segments[i];
        uint8_t *dst = guest_ram_ptr(mem, s->vaddr, s->memsz);
        if (!dst || !in_file(s->offset, s->filesz, size))
            return fail(err, es, -EINVAL, "segment at %#llx does not fit guest RAM",
                        (unsigned long long)s->vaddr);
        memcpy(dst, data + s->offset, s->filesz);
        memset(dst + s->filesz, 0, s->memsz - s->filesz);
    }
    return 0;
}

int elf_read_file(const char *path, size_t max, uint8_t **data, size_t *size, char *err, size_t es)
{
    *data = NULL;
    *size = 0;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; whatever is not a
     * regular file is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return fail(err, es, -e, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail(err, es, -e, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, es, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, "%s: not a regular file",
                    path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return fail(err, es, -EFBIG, "%s: %lld bytes, larger than guest RAM allows", path,
                    (long long)st.st_size);
    }
    uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        close(fd);
        return fail(err, es, -ENOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return fail(err, es, -e, "%s: %s", path, strerror(e));
        }
        if (n == 0) { /* the file shrank under us: a partial image is not an image */
            close(fd);
            free(buf);
            return fail(err, es, -EIO, "%s: file shrank while reading (%zu of %lld bytes)", path,
                        got, (long long)st.st_size);
        }
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *size = got;
    return 0;
}

/* cmd_classify.c - `vmlab classify`: audit an x86-64 ELF for sensitive instructions.
 *
 * Linear sweep with Zydis over every executable section (SHF_EXECINSTR); each instruction is
 * classified with the same table the dbt scanner and trap_emulate use (emu/emu_class.h).
 * Undecodable bytes are skipped one at a time and counted. Works on any ELF64 x86-64 file
 * (executables, PIE, shared objects); every field is bounds-checked before use. A file without
 * section headers (sstrip'ed) is swept through its executable PT_LOAD segments instead.
 * Strings taken from the file (section names) are escaped in CSV and JSON output.
 */
#include <elf.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "output.h"
#include "emu/x86_decode.h"
#include "vmm/elf_loader.h"
#include "vmm/machine.h"

enum format { FMT_TEXT, FMT_CSV, FMT_JSON };

struct classify_totals {
    uint64_t decoded, undecodable_bytes, sections;
    uint64_t per_class[EMU_CLASS_COUNT];
    uint64_t per_category[PG_CATEGORY_MAX_VALUE + 1];
};

static int bad(const char *path, int status, const char *why)
{
    fprintf(stderr, "vmlab classify: %s: %s\n", path, why);
    return status;
}

static void sweep(const uint8_t *code, uint64_t size, uint64_t addr, const char *section,
                  enum format fmt, bool list, struct classify_totals *t, bool *first_json)
{
    struct x86_decoder dec;
    x86_decoder_init(&dec);
    uint64_t off = 0;
    while (off < size) {
        struct x86_decoded_insn insn;
        if (x86_decode(&dec, code + off, size - off, addr + off, &insn) < 0) {
            t->undecodable_bytes++;
            off++;
            continue;
        }
        t->decoded++;
        enum emu_class cls = x86_classify(&insn);
        off += insn.length;
        if (cls == EMU_CLASS_NONE)
            continue;
        const struct emu_class_info *info = emu_class_info(cls);
        t->per_class[cls]++;
        t->per_category[info->category]++;
        if (!list)
            continue;
        char text[96], bytes[48] = "";
        x86_format(&insn, text, sizeof(text));
        for (unsigned i = 0; i < insn.length && i < 15; i++)
            snprintf(bytes + 3 * i, sizeof(bytes) - 3 * i, "%02x%s", insn.bytes[i],
                     i + 1 < insn.length ? " " : "");
        if (fmt == FMT_TEXT)
            printf("%#14" PRIx64 "  %-10s %-30s %-28s %-14s %s\n", insn.rip, section, bytes, text,
                   info->name, pg_category_name(info->category));
        else if (fmt == FMT_CSV) {
            printf("%#" PRIx64 ",", insn.rip);
            out_csv_field(stdout, section);
            printf(",%s,", bytes);
            out_csv_field(stdout, text);
            printf(",%s,%s\n", info->name, pg_category_name(info->category));
        } else {
            printf("%s    {\"address\": \"%#" PRIx64 "\", \"section\": ", *first_json ? "" : ",\n",
                   insn.rip);
            out_json_string(stdout, section);
            printf(", \"bytes\": \"%s\", \"instruction\": ", bytes);
            out_json_string(stdout, text);
            printf(", \"class\": \"%s\", \"category\": \"%s\"}", info->name,
                   pg_category_name(info->category));
            *first_json = false;
        }
    }
}

int cmd_classify(int argc, char **argv)
{
    static const struct option longopts[] = {{"format", required_argument, 0, 'f'},
                                             {"summary", no_argument, 0, 's'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    enum format fmt = FMT_TEXT;
    bool list = true;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:sh", longopts, NULL)) != -1) {
        if (c == 'f' && !strcmp(optarg, "text"))
            fmt = FMT_TEXT;
        else if (c == 'f' && !strcmp(optarg, "csv"))
            fmt = FMT_CSV;
        else if (c == 'f' && !strcmp(optarg, "json"))
            fmt = FMT_JSON;
        else if (c == 's')
            list = false;
        else if (c == 'h') {
            fputs(command_usage("classify"), stdout);
            return 0;
        } else {
            fprintf(stderr, "vmlab classify: bad option or --format (text, csv, json)\n");
            return VMLAB_STATUS_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "vmlab classify: expected exactly one FILE\n");
        return VMLAB_STATUS_USAGE;
    }
    const char *path = argv[optind];
    uint8_t *data;
    size_t size;
    char err[256];
    int rc = elf_read_file(path, 1ULL << 30, &data, &size, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "vmlab classify: %s\n", err);
        return rc == -ENOENT ? VMLAB_STATUS_NO_INPUT : VMLAB_STATUS_BAD_IMAGE;
    }
    int status = 0;
    Elf64_Ehdr eh;
    if (size < EI_NIDENT || memcmp(data, ELFMAG, SELFMAG) != 0)
        status = bad(path, VMLAB_STATUS_BAD_IMAGE, "not an ELF file (bad magic)");
    else if (data[EI_CLASS] != ELFCLASS64)
        status = bad(path, VMLAB_STATUS_BAD_IMAGE, "not a 64-bit ELF (ELFCLASS64)");
    else if (size < sizeof(eh))
        status = bad(path, VMLAB_STATUS_BAD_IMAGE, "truncated ELF header");
    if (status) {
        free(data);
        return status;
    }
    memcpy(&eh, data, sizeof(eh));
    if (eh.e_machine != EM_X86_64)
        status = bad(path, VMLAB_STATUS_BAD_IMAGE, "not an x86-64 ELF");
    else if (eh.e_shoff != 0 && (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > size ||
                                 (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > size - eh.e_shoff ||
                                 eh.e_shstrndx >= eh.e_shnum))
        status = bad(path, VMLAB_STATUS_BAD_IMAGE,
                     "section headers are malformed or lie outside the file (truncated?)");
    else if (eh.e_shoff == 0 && (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > size ||
                                 (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff))
        status = bad(path, VMLAB_STATUS_BAD_IMAGE,
                     "no section headers, and program headers are malformed or lie outside the "
                     "file");
    struct classify_totals *t = status ? NULL : calloc(1, sizeof(*t));
    if (!status && !t)
        status = bad(path, VMLAB_STATUS_INTERNAL, "out of memory");
    if (status) {
        free(data);
        return status;
    }
    bool first_json = true;
    if (fmt == FMT_CSV && list)
        printf("address,section,bytes,instruction,class,category\n");
    if (fmt == FMT_JSON) {
        printf("{\n  \"file\": ");
        out_json_string(stdout, path);
        printf(",\n  \"instructions\": [\n");
    }
    /* Without section headers: the executable PT_LOAD segments (sstrip'ed files). */
    for (unsigned i = 0; eh.e_shoff == 0 && i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, data + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
            continue;
        if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset) {
            status = bad(path, VMLAB_STATUS_BAD_IMAGE, "executable segment lies outside the file");
            break;
        }
        char name[32];
        snprintf(name, sizeof(name), "PT_LOAD[%u]", i);
        t->sections++;
        sweep(data + ph.p_offset, ph.p_filesz, ph.p_vaddr, name, fmt, list, t, &first_json);
    }
    Elf64_Shdr strtab = {0};
    if (eh.e_shoff != 0)
        memcpy(&strtab, data + eh.e_shoff + (uint64_t)eh.e_shstrndx * sizeof(Elf64_Shdr),
               sizeof(strtab));
    bool strtab_ok = strtab.sh_offset <= size && strtab.sh_size <= size - strtab.sh_offset;
    for (unsigned i = 0; eh.e_shoff != 0 && !status && i < eh.e_shnum; i++) {
        Elf64_Shdr sh;
        memcpy(&sh, data + eh.e_shoff + (uint64_t)i * sizeof(sh), sizeof(sh));
        if (!(sh.sh_flags & SHF_EXECINSTR) || sh.sh_type != SHT_PROGBITS)
            continue;
        if (sh.sh_offset > size || sh.sh_size > size - sh.sh_offset) {
            status = bad(path, VMLAB_STATUS_BAD_IMAGE, "executable section lies outside the file");
            break;
        }
        char name[32] = "?";
        if (strtab_ok && sh.sh_name < strtab.sh_size)
            snprintf(name, sizeof(name), "%.*s", (int)(strtab.sh_size - sh.sh_name),
                     (const char *)data + strtab.sh_offset + sh.sh_name);
        t->sections++;
        sweep(data + sh.sh_offset, sh.sh_size, sh.sh_addr, name, fmt, list, t, &first_json);
    }
    if (!status && t->sections == 0)
        status = bad(path, VMLAB_STATUS_BAD_IMAGE, "no executable section");
    if (status && fmt == FMT_JSON)
        printf("\n  ]\n}\n"); /* keep stdout well-formed; the reason is on stderr */
    if (!status) {
        if (fmt == FMT_JSON) {
            printf("\n  ],\n  \"summary\": {\"sections\": %" PRIu64 ", \"decoded\": %" PRIu64
                   ", \"undecodable_bytes\": %" PRIu64 ", \"classes\": {",
                   t->sections, t->decoded, t->undecodable_bytes);
            bool first = true;
            for (unsigned cl = 1; cl < EMU_CLASS_COUNT; cl++)
                if (t->per_class[cl]) {
                    printf("%s\"%s\": %" PRIu64, first ? "" : ", ", emu_class_info(cl)->name,
                           t->per_class[cl]);
                    first = false;
                }
            printf("}, \"categories\": {");
            for (unsigned k = 1; k <= PG_CATEGORY_MAX_VALUE; k++)
                printf("%s\"%s\": %" PRIu64, k > 1 ? ", " : "", pg_category_name(k),
                       t->per_category[k]);
            printf("}}\n}\n");
        } else if (fmt == FMT_CSV) {
            /* CSV output is CSV only: the summary as CSV rows when asked for (--summary),
             * otherwise one line of totals on stderr */
            if (!list) {
                printf("category,class,count\n");
                for (unsigned k = 1; k <= PG_CATEGORY_MAX_VALUE; k++)
                    for (unsigned cl = 1; cl < EMU_CLASS_COUNT; cl++)
                        if (t->per_class[cl] && emu_class_info(cl)->category == (enum pg_category)k)
                            printf("%s,%s,%" PRIu64 "\n", pg_category_name(k),
                                   emu_class_info(cl)->name, t->per_class[cl]);
            }
            fprintf(stderr,
                    "vmlab classify: %s: %" PRIu64 " executable sections, %" PRIu64
                    " instructions decoded, %" PRIu64 " undecodable bytes skipped\n",
                    path, t->sections, t->decoded, t->undecodable_bytes);
        } else {
            printf("\nsummary for %s: %" PRIu64 " executable sections, %" PRIu64
                   " instructions decoded, %" PRIu64 " undecodable bytes skipped\n",
                   path, t->sections, t->decoded, t->undecodable_bytes);
            for (unsigned k = 1; k <= PG_CATEGORY_MAX_VALUE; k++) {
                printf("  %-24s %8" PRIu64 "\n", pg_category_name(k), t->per_category[k]);
                for (unsigned cl = 1; cl < EMU_CLASS_COUNT; cl++)
                    if (t->per_class[cl] && emu_class_info(cl)->category == (enum pg_category)k)
                        printf("      %-20s %8" PRIu64 "\n", emu_class_info(cl)->name,
                               t->per_class[cl]);
            }
        }
    }
    free(t);
    free(data);
    return status;
}

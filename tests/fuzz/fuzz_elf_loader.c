/* fuzz_elf_loader.c - libFuzzer target: any bytes through elf_parse() and, when accepted,
 * elf_load() into guest RAM. The loader must never read or write out of bounds, whatever the
 * input (ASan/UBSan report it if it does). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "vmm/elf_loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_memory *mem;
    if (!mem && guest_memory_create(0, &mem) < 0)
        abort();
    struct elf_image img;
    char err[256];
    if (elf_parse(data, size, &img, err, sizeof(err)) == 0) {
        if (elf_load(&img, data, size, mem, err, sizeof(err)) != 0)
            abort(); /* a parsed image must always load */
        if (img.expect && (img.expect < (const char *)data ||
                           img.expect + img.expect_size > (const char *)data + size))
            abort();
    }
    return 0;
}

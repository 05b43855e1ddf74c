/* fuzz_decode.c - libFuzzer target: the decoder wrapper, classifier and formatter on arbitrary
 * bytes (what trap_emulate's handler and dbt's scanner see when a guest jumps into garbage). */
#include <stddef.h>
#include <stdint.h>

#include "emu/x86_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct x86_decoder dec;
    x86_decoder_init(&dec);
    size_t off = 0;
    while (off < size) {
        struct x86_decoded_insn insn;
        if (x86_decode(&dec, data + off, size - off, 0x40200000 + off, &insn) < 0) {
            off++;
            continue;
        }
        (void)emu_class_info(x86_classify(&insn));
        char text[128];
        x86_format(&insn, text, sizeof(text));
        off += insn.length;
    }
    return 0;
}

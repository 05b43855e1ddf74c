#!/usr/bin/env python3
"""gen_seeds.py [DIR] - write the tiny seed files of tests/fuzz/corpus.

Seeds give libFuzzer a head start past the checks it would otherwise take long to guess (the
ELF magic, a program header table in the file, a PT_LOAD inside guest RAM, a section name
table): a valid minimal guest, the same with a .vmlab_expect section, and near misses that each
stop at a different check. The decoder gets a few bytes of sensitive instructions. All seeds
are a few hundred bytes at most; rerun this script to regenerate them.
"""
import os
import struct
import sys

IMAGE_BASE = 0x40200000
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr, 64 bytes
PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr, 56 bytes
SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr, 64 bytes
PT_LOAD, PT_INTERP = 1, 3
PF_X, PF_W, PF_R = 1, 2, 4
SHT_PROGBITS, SHT_STRTAB = 1, 3
ET_EXEC, ET_DYN = 2, 3
EM_X86_64 = 62

# mov eax, 0; out 0xf4, eax; hlt  (write 0 to the exit port, then stop)
CODE = bytes([0xB8, 0, 0, 0, 0, 0xE7, 0xF4, 0xF4])


def ident(cls=2):
    return b"\x7fELF" + bytes([cls, 1, 1]) + bytes(9)


def image(with_expect=False, etype=ET_EXEC, extra_phdrs=(), entry_off=0):
    """Ehdr, program headers, code, and optionally .vmlab_expect + .shstrtab + 3 shdrs."""
    phdrs = [(PT_LOAD, PF_R | PF_X, 0, IMAGE_BASE, len(CODE), 0x1000)] + list(extra_phdrs)
    ph_off = EHDR.size
    code_off = ph_off + PHDR.size * len(phdrs)
    body = bytearray(CODE)
    shoff = shnum = shstrndx = 0
    tail = b""
    if with_expect:
        expect = b"*|pass||\0ending|exit:0\0timeout|1\0"
        names = b"\0.vmlab_expect\0.shstrtab\0"
        expect_off = code_off + len(body)
        names_off = expect_off + len(expect)
        shoff = names_off + len(names)
        shnum, shstrndx = 3, 2
        tail = (expect + names + bytes(SHDR.size) +
                SHDR.pack(1, SHT_PROGBITS, 0, 0, expect_off, len(expect), 0, 0, 1, 0) +
                SHDR.pack(15, SHT_STRTAB, 0, 0, names_off, len(names), 0, 0, 1, 0))
    out = bytearray(EHDR.pack(ident(), etype, EM_X86_64, 1, IMAGE_BASE + entry_off, ph_off,
                              shoff, 0, EHDR.size, PHDR.size, len(phdrs), SHDR.size, shnum,
                              shstrndx))
    for i, (ptype, flags, off, vaddr, filesz, memsz) in enumerate(phdrs):
        # The first segment maps the code; extra ones point at it too, at their own address.
        out += PHDR.pack(ptype, flags, code_off if i == 0 else off, vaddr, vaddr, filesz, memsz,
                         0x1000)
    return bytes(out + body + tail)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    seeds = {
        "elf_min.elf": image(),
        "elf_expect.elf": image(with_expect=True),
        "elf_two_segments.elf": image(extra_phdrs=[(PT_LOAD, PF_R | PF_W, 0, IMAGE_BASE + 0x1000,
                                                    4, 0x2000)]),
        "elf_overlap.elf": image(extra_phdrs=[(PT_LOAD, PF_R, 0, IMAGE_BASE + 0x800, 4, 0x10)]),
        "elf_interp.elf": image(extra_phdrs=[(PT_INTERP, PF_R, 0, 0, 4, 4)]),
        "elf_dyn.elf": image(etype=ET_DYN),
        "elf_entry_outside.elf": image(entry_off=0x1000),
        "elf_truncated.elf": image(with_expect=True)[:100],
        "elf32.elf": ident(1) + bytes(36),
        "elf_header_only.elf": image()[:EHDR.size],
        # cli; sti; sgdt [rax]; int 0x21; pushfq; popfq; lar eax, ecx; out 0xe9, al; hlt;
        # rdtsc; cpuid; mov cr3, rax; in al, dx; iretq; syscall
        "decode_sensitive.bin": bytes.fromhex("fafb0f0100cd219c9d0f02c1e6e9f4"
                                              "0f310fa20f22d8ec48cf0f05"),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

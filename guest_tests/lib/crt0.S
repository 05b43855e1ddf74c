/* crt0.S - guest entry: the VMM starts us at _start in long mode, CPL 0, IF = 0, with RSP at
 * the top of RAM. Call main() and hand its return value to the exit port. */
    .section .text.start, "ax"
    .globl _start
_start:
    xorl %ebp, %ebp
    andq $-16, %rsp
    call main
    movl %eax, %edi
    call guest_exit
1:  hlt
    jmp 1b
    .section .note.GNU-stack,"",@progbits

# The student's CLI only steps over the instruction: the virtual IF stays set. The CLI/STI
# step must lose its points on trap_emulate (timer_cli): a lab build runs trap_emulate without
# its assembly fast path, which would otherwise emulate CLI without the student's code.
/^void emu_exec_cli(/,/^}/s/emu_set_flag(s, X86_EFLAGS_IF, false);/(void)s;/

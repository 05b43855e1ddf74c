# The student's STI only steps over the instruction: the virtual IF stays clear. The CLI/STI
# step must lose its points on trap_emulate (timer_sti, timer_cli): see cli_does_nothing.sed.
/^void emu_exec_sti(/,/^}/s/emu_set_flag(s, X86_EFLAGS_IF, true);/(void)s;/

/* hlt_cli.c - HLT with interrupts disabled halts forever: the run ends as "halted". */
#include "guest.h"

GUEST_EXPECT_ENDING("halted");

int main(void)
{
    cli();
    hlt();
    return 0;
}

/* cmd_bench.c - placeholder until the benchmark harness lands. */
#include <stdio.h>

#include "commands.h"
#include "vmm/machine.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "vmlab bench: the benchmark harness is not built yet\n");
    return VMLAB_STATUS_UNAVAILABLE;
}

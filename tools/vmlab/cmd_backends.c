/* cmd_backends.c - `vmlab backends`: what is compiled in, what works on this host, and why. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "vmm/backend.h"
#include "vmm/machine.h"

int cmd_backends(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "vmlab backends: takes no arguments\n");
        return VMLAB_STATUS_USAGE;
    }
    const struct backend_ops *const *list = backend_list();
    for (unsigned i = 0; list[i]; i++) {
        const struct backend_ops *ops = list[i];
        char reason[256] = "";
        int rc = ops->probe(reason, sizeof(reason));
        printf("%-13s %-11s %s\n", ops->name, rc == 0 ? "available" : "unavailable",
               rc == 0 ? ops->summary : reason);
        if (rc == 0 && ops->describe_host) {
            char host[2048] = "";
            ops->describe_host(host, sizeof(host));
            for (char *line = strtok(host, "\n"); line; line = strtok(NULL, "\n"))
                printf("%-13s %-11s   %s\n", "", "", line);
        }
    }
    return 0;
}

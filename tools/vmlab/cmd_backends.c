/* cmd_backends.c - `vmlab backends [--format text|json]`: what is compiled in, what works on
 * this host, and why. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "output.h"
#include "vmm/backend.h"
#include "vmm/machine.h"

int cmd_backends(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, 0, 'f'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    bool json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
        if (c == 'f' && (!strcmp(optarg, "text") || !strcmp(optarg, "json")))
            json = !strcmp(optarg, "json");
        else if (c == 'h') {
            fputs(command_usage("backends"), stdout);
            return 0;
        } else {
            fprintf(stderr, "vmlab backends: bad option or --format (text, json)\n");
            return VMLAB_STATUS_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "vmlab backends: unexpected argument '%s'\n", argv[optind]);
        return VMLAB_STATUS_USAGE;
    }
    const struct backend_ops *const *list = backend_list();
    if (json)
        printf("{\"backends\": [");
    for (unsigned i = 0; list[i]; i++) {
        const struct backend_ops *ops = list[i];
        char reason[256] = "", host[2048] = "";
        int rc = ops->probe(reason, sizeof(reason));
        if (rc == 0 && ops->describe_host)
            ops->describe_host(host, sizeof(host));
        if (json) {
            printf("%s\n  {\"name\": ", i ? "," : "");
            out_json_string(stdout, ops->name);
            printf(", \"available\": %s, \"summary\": ", rc == 0 ? "true" : "false");
            out_json_string(stdout, ops->summary);
            printf(", \"reason\": ");
            out_json_string(stdout, reason);
            printf(", \"host\": [");
            unsigned n = 0;
            for (char *line = strtok(host, "\n"); line; line = strtok(NULL, "\n")) {
                printf("%s", n++ ? ", " : "");
                out_json_string(stdout, line);
            }
            printf("]}");
            continue;
        }
        printf("%-13s %-11s %s\n", ops->name, rc == 0 ? "available" : "unavailable",
               rc == 0 ? ops->summary : reason);
        for (char *line = strtok(host, "\n"); line; line = strtok(NULL, "\n"))
            printf("%-13s %-11s   %s\n", "", "", line);
    }
    if (json)
        printf("\n]}\n");
    return 0;
}

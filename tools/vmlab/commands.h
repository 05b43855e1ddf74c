/* commands.h - the subcommands of the vmlab tool. Each returns the process exit status. */
#ifndef VMLAB_COMMANDS_H
#define VMLAB_COMMANDS_H

int cmd_run(int argc, char **argv);         /* vmlab run [options] IMAGE */
int cmd_trace(int argc, char **argv);       /* vmlab trace [options] IMAGE */
int cmd_check(int argc, char **argv);       /* vmlab check --backend B IMAGE (ctest) */
int cmd_backends(int argc, char **argv);    /* vmlab backends */
int cmd_conformance(int argc, char **argv); /* vmlab conformance [--format text|csv|json] */
int cmd_classify(int argc, char **argv);    /* vmlab classify FILE */
int cmd_bench(int argc, char **argv);       /* vmlab bench ... (bench/) */

/* The usage text of a command (main.c): printed by `vmlab help CMD` and `vmlab CMD --help`. */
const char *command_usage(const char *name);

#endif

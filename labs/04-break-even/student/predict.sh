#!/bin/bash
# predict.sh - lab 4: predict the break-even point m* of each case below on THIS host, from
# h, p and B that you measure here, and print one line per case:
#
#     CLASS F h_ns p_ns B_ns m_star
#
# e.g. "cli 1024 2600.0 0.5 89000 34.25" (lines starting with # are ignored). The grader runs this script (labs/04-break-even/
# tests), then vmlab's break-even sweep, and compares your m_star with the crossover the sweep
# observes for the same block: one CLASS instruction and F innocuous ones (LEA), executed m
# times.
#
# Measure with anything vmlab offers (vmlab bench --only classes,translation; vmlab run
# --stats; guests you write and build with build/guest_tests/vmlab-guest-cc) - except the
# break-even and footprint experiments, which the grader refuses to run for you.
# Environment: VMLAB (the vmlab to use), BUILD (its build folder), WORK (a scratch folder).
set -u

for c in cli:1024 cli:16384 rdtsc:1024 rdtsc:16384; do
  class=${c%%:*} f=${c##*:}
  # TODO: measure h (trap_emulate's cost for one CLASS instruction), p (dbt's), and B (dbt's
  # cost to translate the block once), then m* = B / (h - p).
  echo "# $class $f: not predicted yet"
done

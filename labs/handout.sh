#!/bin/bash
# handout.sh - the student tarball of one or more labs (`make handout LAB=N`, labs/README.md).
#
#   labs/handout.sh N [N...] [--out DIR]
#
# The tarball holds the repository's tracked files as they are in the working tree, without
# labs/solutions/ and the labs' mutants/ (they show lines of the solutions), and with every
# file a handed-out lab REPLACES turned into a symbolic link to that lab's starter (labs/NN-name/student/...): the reference solution is not in it, and a
# plain build compiles the student's file. Prints the tarball's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$root/build/handout
labs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?}; shift ;;
    *) for n in $1; do labs+=("$n"); done ;;
  esac
  shift
done
[ ${#labs[@]} -gt 0 ] || { echo "usage: labs/handout.sh N [N...] [--out DIR]" >&2; exit 64; }
git rev-parse --git-dir >/dev/null 2>&1 || { echo "handout: not a git checkout (the file list comes from git ls-files)" >&2; exit 1; }

name=lab$(IFS=-; echo "${labs[*]}")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
top=$stage/vmlab-$name
mkdir -p "$top"
# Tracked files, as they are now (an instructor's uncommitted edits included).
git ls-files -z | grep -zEv '^labs/(solutions/|[0-9][0-9]-[^/]*/mutants/)' | tar --null -T - -cf - | tar -xf - -C "$top"

for n in "${labs[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "handout: LAB must be numbers, got '$n'" >&2; exit 64; }
  dir=$(ls -d "labs/$(printf %02d "$((10#$n))")"-* 2>/dev/null | head -n1)
  [ -n "$dir" ] && [ -f "$dir/lab.conf" ] || { echo "handout: no lab $n under labs/" >&2; exit 1; }
  REPLACES="" STUDENT_FILES=""
  # shellcheck source=/dev/null
  source "$dir/lab.conf"
  for f in $STUDENT_FILES; do
    [ -f "$top/$dir/student/$f" ] || { echo "handout: starter $dir/student/$f is not tracked" >&2; exit 1; }
  done
  for t in $REPLACES; do
    base=$(basename "$t")
    [ -f "$top/$dir/student/$base" ] || { echo "handout: $dir has no starter for $t" >&2; exit 1; }
    rm -f "$top/$t"
    ln -s "$(realpath --relative-to="$(dirname "$top/$t")" "$top/$dir/student/$base")" "$top/$t"
  done
done
mkdir -p "$out"
tar -C "$stage" -czf "$out/$name.tar.gz" "vmlab-$name"
echo "$out/$name.tar.gz"

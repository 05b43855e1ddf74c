#!/bin/bash
# ci.sh - CI grades the course kit (scripts/run-tests.sh runs this):
#   - every lab's reference solution scores full marks (of the points gradable on this host);
#   - every untouched starter builds, finishes (no hang: each test has a timeout) and scores
#     less than full marks;
#   - every mutant of a reference solution (labs/NN-name/mutants/*.sed: a sed script that
#     breaks one thing in the solution's files, with a comment saying what) scores less than
#     full marks: the tests can tell a wrong solution from the right one. A mutant whose sed
#     changes nothing (the solution moved on) fails too, so mutants cannot rot silently;
#   - every lab's handout tarball leaves its solution out, and one of them (the lab that
#     replaces a file of the emulation core) builds and grades from the extracted tarball.
# A lab none of whose tests are gradable here (no /dev/kvm and no qemu for lab 5) is reported
# as SKIPPED with the reason, never as passed.
#
#   labs/ci.sh [--build DIR] [--labs "1 2 3"] [--no-tarball-build]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
build=$root/build-lab-ci
only="" tarball_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=${2:?}; shift ;;
    --labs) only=${2:?}; shift ;;
    --no-tarball-build) tarball_build=0 ;;
    *) echo "usage: labs/ci.sh [--build DIR] [--labs \"N ...\"] [--no-tarball-build]" >&2; exit 64 ;;
  esac
  shift
done
# The starters and solutions are ours: they must build without a warning.
export VMLAB_LAB_CMAKE_ARGS="${VMLAB_LAB_CMAKE_ARGS:--DVMLAB_WERROR=ON}"
fail=0
bad() { echo "ci.sh: FAIL: $*"; fail=1; }

# score JSON -> "score max not_gradable"
score_of() {
  sed -n 's/.*"score": \([0-9]*\), "max": \([0-9]*\), "not_gradable": \([0-9]*\).*/\1 \2 \3/p' "$1"
}

labs=$only
[ -n "$labs" ] || labs=$(ls -d labs/[0-9][0-9]-* | sed 's|labs/0*\([0-9]*\)-.*|\1|' | tr '\n' ' ')
for n in $labs; do
  dir=$(ls -d "labs/$(printf %02d "$n")"-* | head -n1)
  name=$(basename "$dir")
  echo "=== $name: reference solution"
  t0=$(date +%s)
  labs/grade.sh "$n" --solution --build "$build" --result "$build/ci-$name-solution.json"
  rc=$?
  [ $rc = 0 ] || { bad "$name: grading the solution exited $rc"; continue; }
  read -r s m ng < <(score_of "$build/ci-$name-solution.json")
  if [ "$m" = 0 ]; then
    echo "ci.sh: $name: SKIPPED: none of its tests is gradable on this host/tree ($ng points; reasons above)"
  elif [ "$s" != "$m" ]; then
    bad "$name: the reference solution scores $s/$m"
  fi
  echo "=== $name: untouched starter"
  labs/grade.sh "$n" --build "$build" --result "$build/ci-$name-starter.json"
  rc=$?
  [ $rc = 0 ] || { bad "$name: grading the starter exited $rc (2: it does not build against the tree)"; continue; }
  read -r s2 m2 _ < <(score_of "$build/ci-$name-starter.json")
  if [ "$m2" != 0 ] && [ "$s2" -ge "$m2" ]; then
    bad "$name: the untouched starter scores full marks ($s2/$m2)"
  fi
  echo "ci.sh: $name: solution $s/$m, starter $s2/$m2 ($(( $(date +%s) - t0 )) s)"
  STUDENT_FILES="" SOLUTION=""
  # shellcheck source=/dev/null
  source "$dir/lab.conf"
  for mutant in "$dir"/mutants/*.sed; do
    [ -f "$mutant" ] || continue
    mname=$(basename "$mutant" .sed)
    echo "=== $name: mutant $mname"
    mdir=$build/mutant-$name-$mname
    rm -rf "$mdir" && mkdir -p "$mdir"
    changed=0
    for f in $STUDENT_FILES; do
      if [ "$SOLUTION" = tree ]; then
        REPLACES=""
        source "$dir/lab.conf"
        src=$(for r in $REPLACES; do [ "$(basename "$r")" = "$f" ] && echo "$r"; done | head -n1)
      else
        src=$SOLUTION/$f
      fi
      sed -f "$mutant" "$src" >"$mdir/$f"
      cmp -s "$src" "$mdir/$f" || changed=1
    done
    [ $changed = 1 ] || { bad "$name: mutant $mname changes nothing in the solution (update it)"; continue; }
    labs/grade.sh "$n" --student "$mdir" --build "$build" --result "$build/ci-$name-mutant-$mname.json" --quiet
    rc=$?
    [ $rc = 0 ] || { bad "$name: grading mutant $mname exited $rc"; continue; }
    read -r s3 m3 _ < <(score_of "$build/ci-$name-mutant-$mname.json")
    if [ "$m3" != 0 ] && [ "$s3" -ge "$m3" ]; then
      bad "$name: mutant $mname scores full marks ($s3/$m3): the tests do not catch it"
    else
      echo "ci.sh: $name: mutant $mname $s3/$m3"
    fi
  done
  echo "=== $name: handout"
  tgz=$(labs/handout.sh "$n" --out "$build/handout") || { bad "$name: handout.sh failed"; continue; }
  list=$(tar -tzvf "$tgz")
  echo "$list" | grep -q '/labs/solutions/' && bad "$name: the tarball holds labs/solutions/"
  REPLACES=""
  # shellcheck source=/dev/null
  source "$dir/lab.conf"
  for t in $REPLACES; do
    echo "$list" | grep -Eq "^l.* vmlab-lab$n/$t -> " || bad "$name: $t is not a link to the starter in the tarball"
  done
done

# One tarball built and graded as a student would: the trap-and-emulate lab's, whose starter
# replaces part of the emulation core.
if [ $tarball_build = 1 ] && [[ " $labs " == *" 1 "* ]]; then
  echo "=== lab 1 tarball: extract, build, grade the starter"
  x=$(mktemp -d)
  tar -xzf "$build/handout/lab1.tar.gz" -C "$x"
  (cd "$x/vmlab-lab1" && labs/grade.sh 1 --build "$x/build-lab" --result "$x/lab1.json" >"$x/grade.log" 2>&1)
  rc=$?
  if [ $rc != 0 ]; then
    tail -n 20 "$x/grade.log"
    bad "the lab 1 tarball does not build and grade (exit $rc)"
  else
    read -r s m ng < <(score_of "$x/lab1.json")
    echo "ci.sh: lab 1 from its tarball: starter $s/$m"
  fi
  rm -rf "$x"
fi
[ $fail = 0 ] && echo "ci.sh: the course kit passed" || echo "ci.sh: the course kit FAILED"
exit $fail

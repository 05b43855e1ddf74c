#!/bin/bash
# grade.sh - build a student's version of a lab, run the lab's tests, print points per test
# and the total, write the result as JSON. `make grade LAB=N` runs it; labs/README.md is the
# format it reads.
#
#   labs/grade.sh N [--solution] [--student DIR] [--build DIR] [--result FILE] [--quiet]
#
# Environment: VMLAB_HIDDEN_TESTS=DIR adds DIR/NN-name/tests (an instructor's hidden tests);
# VMLAB_LAB_CMAKE_ARGS adds cmake options to the lab build (CI: -DVMLAB_WERROR=ON).
# Exit status: 0 graded (whatever the score), 2 the student's files do not build, 1 grader
# error (bad lab number, missing file).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

usage() { echo "usage: labs/grade.sh N [--solution] [--student DIR] [--build DIR] [--result FILE] [--quiet]" >&2; exit 1; }
[ $# -ge 1 ] || usage
num=$1; shift
solution=0 student="" build="$root/build-lab" result="" quiet=0
while [ $# -gt 0 ]; do
  case "$1" in
    --solution) solution=1 ;;
    --student) student=${2:?}; shift ;;
    --build) build=${2:?}; shift ;;
    --result) result=${2:?}; shift ;;
    --quiet) quiet=1 ;;
    *) usage ;;
  esac
  shift
done
[[ "$num" =~ ^[0-9]+$ ]] || { echo "grade: LAB must be a number, got '$num'" >&2; exit 1; }
lab_dir=$(ls -d "labs/$(printf %02d "$((10#$num))")"-* 2>/dev/null | head -n1)
[ -n "$lab_dir" ] && [ -f "$lab_dir/lab.conf" ] || { echo "grade: no lab $num under labs/ (labs/README.md)" >&2; exit 1; }
lab_name=$(basename "$lab_dir")

TITLE="" STUDENT_FILES="" REPLACES="" SOLUTION="" TEST_TIMEOUT=120 BUILD_TARGETS=""
# shellcheck source=/dev/null
source "$lab_dir/lab.conf"

# Which folder is graded, and which folder the lab build takes replaced files from.
lab_student_dir=""
if [ $solution = 1 ]; then
  if [ "$SOLUTION" = tree ]; then
    student="(the tree's own ${REPLACES})"
    lab_student_dir=""
  else
    student=$SOLUTION
    lab_student_dir=$root/$SOLUTION
  fi
else
  student=${student:-$lab_dir/student}
  [ -d "$student" ] || { echo "grade: student folder $student missing" >&2; exit 1; }
  lab_student_dir=$(cd "$student" && pwd)
fi
for f in $STUDENT_FILES; do
  if [ -n "$lab_student_dir" ] && [ ! -f "$lab_student_dir/$f" ]; then
    echo "grade: $lab_student_dir/$f missing (the lab's files: $STUDENT_FILES)" >&2; exit 1
  fi
done
mkdir -p "$build/grade"
result=${result:-$build/grade/lab$((10#$num)).json}

say() { [ $quiet = 1 ] || echo "$@"; }
say "== grading $lab_name ($TITLE): $student"

# ---- the lab build ----------------------------------------------------------------------
log=$build/grade/build.log
targets="vmlab guests $BUILD_TARGETS"
# shellcheck disable=SC2086 # VMLAB_LAB_CMAKE_ARGS: extra cmake options (CI: -DVMLAB_WERROR=ON)
if ! { cmake -S . -B "$build" -DVMLAB_STUDENT_DIR="$lab_student_dir" ${VMLAB_LAB_CMAKE_ARGS:-} &&
       nice cmake --build "$build" -j"$(nproc)" --target $targets; } >"$log" 2>&1; then
  echo "grade: the lab build failed (full log: $log):"
  grep -E "error|Error" "$log" | head -n 30
  printf '{"lab": "%s", "student": "%s", "score": 0, "max": null, "build": "failed", "tests": []}\n' \
    "$lab_name" "$student" >"$result"
  exit 2
fi
grep -q "lab build:" "$log" && say "$(grep "lab build:" "$log" | sed 's/^-- /   /' | sort -u)"

# ---- the tests ----------------------------------------------------------------------------
json_escape() { # stdin -> a JSON string body
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' -e 's/\r//g' | tr -d '\000-\010\013\014\016-\037' |
    awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'
}

export VMLAB="$build/tools/vmlab/vmlab" BUILD="$build" STUDENT="$lab_student_dir" LAB_DIR="$root/$lab_dir"
export LAB_ROOT="$root"
score=0 max=0 skipped=0 count=0
tests_json=""
work_root=$build/grade/work-$lab_name
rm -rf "$work_root"; mkdir -p "$work_root"

run_tests_file() { # FILE PREFIX HIDDEN_DIR
  local file=$1 prefix=$2 hidden=$3 points name cmd
  while read -r points name cmd; do
    [[ -z "$points" || "$points" == \#* ]] && continue
    [[ "$points" =~ ^[0-9]+$ ]] || { echo "grade: $file: bad line '$points $name $cmd'" >&2; continue; }
    name=$prefix$name
    count=$((count + 1))
    local work=$work_root/$count
    mkdir -p "$work"
    local t0 t1 rc status detail got
    t0=$(date +%s.%N)
    WORK=$work HIDDEN=$hidden timeout -k 5 "$TEST_TIMEOUT" \
      bash -c 'source "$LAB_ROOT/labs/lib.sh"; [ -f "$LAB_DIR/lib.sh" ] && source "$LAB_DIR/lib.sh"; '"$cmd" \
      </dev/null >"$work/output.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    got=0
    case $rc in
      0) status=pass; got=$points ;;
      77) status=not_gradable ;;
      124|137) status=timeout ;;
      *) status=fail ;;
    esac
    detail=""
    [ $status != pass ] && detail=$(grep -v '^$' "$work/output.log" | tail -n 1 | cut -c1-300)
    [ $status = timeout ] && detail="killed after ${TEST_TIMEOUT} s${detail:+: $detail}"
    if [ $status = not_gradable ]; then
      skipped=$((skipped + points))
    else
      max=$((max + points))
      score=$((score + got))
    fi
    local mark
    case $status in pass) mark="ok" ;; not_gradable) mark="not gradable here" ;; *) mark=$status ;; esac
    if [ $quiet = 0 ]; then
      printf '  %3s/%-3s %-32s %6ss  %s\n' "$([ $status = not_gradable ] && echo -- || echo $got)" \
        "$points" "$name" "$secs" "$mark${detail:+: $detail}"
    fi
    [ -n "$tests_json" ] && tests_json+=", "
    tests_json+="{\"name\": \"$(printf '%s' "$name" | json_escape)\", \"points\": $got, \"max\": $points, \"status\": \"$status\", \"seconds\": $secs, \"detail\": \"$(printf '%s' "$detail" | json_escape)\"}"
  done <"$file"
}

run_tests_file "$lab_dir/tests" "" ""
if [ -n "${VMLAB_HIDDEN_TESTS:-}" ]; then
  hidden=$VMLAB_HIDDEN_TESTS/$lab_name
  if [ -f "$hidden/tests" ]; then
    run_tests_file "$hidden/tests" "hidden." "$(cd "$hidden" && pwd)"
  else
    say "   (no hidden tests for $lab_name in $VMLAB_HIDDEN_TESTS)"
  fi
fi

extra=""
[ $skipped -gt 0 ] && extra=" ($skipped points not gradable on this host: see the tests marked so)"
say "   score: $score/$max$extra"
printf '{"lab": "%s", "student": "%s", "score": %d, "max": %d, "not_gradable": %d, "tests": [%s]}\n' \
  "$lab_name" "$(printf '%s' "$student" | json_escape)" "$score" "$max" "$skipped" "$tests_json" >"$result"
say "   result: $result"
exit 0

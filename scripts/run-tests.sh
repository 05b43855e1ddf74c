#!/bin/bash
# run-tests.sh - the whole test suite, as CI runs it (`make test`).
#   1. build with -Werror, run every ctest test (unit tests, every guest on every backend,
#      dbt differential test, nested-KVM conformance when qemu-system-x86 is available)
#   2. rebuild with AddressSanitizer + UndefinedBehaviorSanitizer and run the suite again
#      (the nested-KVM test once is enough)
#   3. grade the course kit (labs/ci.sh): every lab's reference solution scores full marks,
#      every untouched starter less, without a crash or a hang; the handout tarballs build
#   4. build everything again with clang -Werror (a second compiler's warnings), and run each
#      libFuzzer target for a short, bounded time
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
fail=0
step() { echo; echo "=== $* ==="; }

step "build (-Werror)"
cmake -S . -B build -DVMLAB_WERROR=ON -DVMLAB_NESTED_KVM_TEST=ON >/dev/null || exit 1
cmake --build build -j"$jobs" || exit 1

step "ctest"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900) || fail=1

step "ASan + UBSan build and ctest"
cmake -S . -B build-asan -DVMLAB_WERROR=ON -DVMLAB_SANITIZE=ON >/dev/null || exit 1
cmake --build build-asan -j"$jobs" || exit 1
(cd build-asan && ASAN_OPTIONS=detect_leaks=0:allow_user_segv_handler=1:handle_segv=0:handle_sigill=0:handle_sigbus=0:handle_sigfpe=0 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j"$jobs" --timeout 900 -LE nested) || fail=1

step "course kit (labs/ci.sh)"
labs/ci.sh || fail=1

if command -v clang >/dev/null && [ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ]; then
  step "clang build (-Werror, every target) and fuzz smoke (libFuzzer)"
  CC=clang cmake -S . -B build-fuzz -DVMLAB_FUZZ=ON -DVMLAB_WERROR=ON >/dev/null || exit 1
  cmake --build build-fuzz -j"$jobs" || exit 1
  scripts/fuzz-smoke.sh build-fuzz || fail=1
else
  echo "fuzz smoke: SKIPPED (clang / libclang-rt-14-dev not installed)"
fi

echo
if [ $fail = 0 ]; then echo "run-tests: all passed"; else echo "run-tests: FAILURES (see above)"; fi
exit $fail

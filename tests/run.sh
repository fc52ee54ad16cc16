#!/usr/bin/env bash
# The test command: installs dependencies, then runs the suite in six configurations
# (release, with the slow suites once; ASan+UBSan, valgrind, reference BLAS, -O0 debug,
# ThreadSanitizer) and prints "N skipped" (when any) and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$jobs}

run() { # name, build dir, meson test args...
  local name=$1 dir=$2
  shift 2
  echo "=== $name ==="
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "$@" || true
}

meson setup build --wipe -Dtests=enabled >/dev/null 2>&1 || meson setup build -Dtests=enabled >/dev/null || exit 1
ninja -C build || exit 1
meson setup build-asan -Dtests=enabled -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
  -Db_lundef=false -Dexamples=false -Dbench=false >/dev/null 2>&1 \
  || meson setup --reconfigure build-asan >/dev/null || exit 1
ninja -C build-asan || exit 1
# Reference BLAS (libblas-dev's netlib library, linked from its own directory so it is not
# OpenBLAS through Debian's alternatives): the fast suites, about 35 s with the build.
meson setup build-netlib -Dtests=enabled -Dblas=blas-netlib -Dexamples=false -Dbench=false >/dev/null 2>&1 \
  || meson setup --reconfigure build-netlib >/dev/null || exit 1
ninja -C build-netlib || exit 1
# -O0 (no inlining: a vector passed between a target_clones clone and baseline code would break
# here first; meson.build makes -Wpsabi an error): the fast suites, about 1.5 min with the build.
meson setup build-debug -Dtests=enabled -Dbuildtype=debug -Dexamples=false -Dbench=false >/dev/null 2>&1 \
  || meson setup --reconfigure build-debug >/dev/null || exit 1
ninja -C build-debug || exit 1
# ThreadSanitizer: the whole suite (~30 s with the build), in particular the thread test
# (distinct models trained, explained, saved and logged on distinct threads equal the
# sequential results) and the tests that force libtfx's own threads (Winograd blocks,
# one-sample Dense, split matrix products) to 2-7 threads. clang: core/internal.h turns the
# target_clones off under any sanitizer (an ifunc resolver runs before the TSan runtime is set up).
grep -qs '^C compiler for the host machine: clang' build-tsan/meson-logs/meson-log.txt || rm -rf build-tsan
CC=clang meson setup build-tsan -Dtests=enabled -Dbuildtype=debugoptimized -Db_sanitize=thread \
  -Db_lundef=false -Dexamples=false -Dbench=false >/dev/null 2>&1 \
  || meson setup --reconfigure build-tsan >/dev/null || exit 1
ninja -C build-tsan || exit 1

rm -f build/meson-logs/testlog*.json build-asan/meson-logs/testlog*.json build-netlib/meson-logs/testlog*.json \
  build-debug/meson-logs/testlog*.json build-tsan/meson-logs/testlog*.json
run "release" build
# The slow suites (IG completeness and the faithfulness metrics on a model trained on
# Fashion-MNIST), once, in the release build: about 70 s.
run "release slow" build --suite slow --logbase testlog-slow
# UBSan reports only print unless told to stop: any report fails its test (the suppressions
# are the stb_image sites of docs/security.md).
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/fuzz/ubsan.supp" \
  run "asan+ubsan" build-asan --no-suite abi --no-suite install
run "valgrind" build --setup=valgrind
run "reference blas" build-netlib --suite fast
run "debug -O0" build-debug --suite fast
# OpenBLAS's own worker threads are not instrumented, so TSan can report false races inside
# it: one OpenBLAS thread here (the tests set libtfx's own thread counts themselves).
# A TSan report makes the test exit non-zero (exitcode 66).
OPENBLAS_NUM_THREADS=1 run "tsan" build-tsan --no-rebuild --no-suite abi --no-suite install

python3 - build/meson-logs/testlog.json build/meson-logs/testlog-slow.json build-asan/meson-logs/testlog.json \
  build/meson-logs/testlog-valgrind.json build-netlib/meson-logs/testlog.json build-debug/meson-logs/testlog.json \
  build-tsan/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        print(f"missing test log {path}")
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"FAILED: {path}: {t.get('name')} ({r})")
if skipped:
    print(f"{skipped} skipped")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY

#!/bin/sh
# Smoke run of one libFuzzer target (the 'fuzz' suite of a -Dfuzzers=true build):
#   smoke.sh <fuzzer> <seed corpus dir> [runs]
# New inputs go to a temporary directory, so the committed corpus is only read. A crash,
# leak, timeout or out-of-memory makes libFuzzer exit non-zero and the test fail; the
# reproducer is copied next to the log (crash-*, leak-*, ...) in the current directory.
set -eu
fuzzer=$1
corpus=$2
runs=${3:-${TFX_FUZZ_RUNS:-2000}}
here=$(cd "$(dirname "$0")" && pwd)
export UBSAN_OPTIONS="suppressions=$here/ubsan.supp:halt_on_error=1:print_stacktrace=1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
exec "$fuzzer" -runs="$runs" -seed=1 -timeout=25 -rss_limit_mb=2560 -max_len=8192 \
  -print_final_stats=1 "$tmp" "$corpus"

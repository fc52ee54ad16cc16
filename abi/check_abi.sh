#!/bin/sh
# ABI gate (suite 'abi'): compare the freshly built libtfx.so with the committed baseline.
#   check_abi.sh <libtfx.so> <source root>
# Fails on an incompatible change (abidiff exit bit 8: a removed function or variable, or a
# change abidiff judges incompatible) and on tool errors (bits 1, 2). Added functions are the
# API growing: accepted (bit 4 alone), as are other bit-4 reports, which are printed for review.
# Skips (77) without abidiff (Debian: abigail-tools). Regenerate the baseline: docs/security.md.
lib=$1
src=$2
command -v abidiff >/dev/null 2>&1 || { echo "abidiff not found (apt-get install abigail-tools)"; exit 77; }
abidiff --drop-private-types --suppressions "$src/abi/libtfx.abignore" \
  --headers-dir2 "$src/include/tfx" "$src/abi/libtfx.abi" "$lib"
rc=$?
echo "abidiff exit status $rc"
if [ $((rc & 8)) -ne 0 ]; then
  echo "FAIL: incompatible ABI change against abi/libtfx.abi"
  exit 1
fi
if [ $((rc & 3)) -ne 0 ]; then
  echo "FAIL: abidiff could not compare (usage or tool error)"
  exit 1
fi
exit 0

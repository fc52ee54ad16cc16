#!/usr/bin/env bash
# The main job: install dependencies, build libtfx, and run the tutorial end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null
out=${TFX_TUTORIAL_OUT:-out}
mkdir -p "$out"
echo "== the seed ConvNet (summary and a prediction) =="
./build/examples/seed_model

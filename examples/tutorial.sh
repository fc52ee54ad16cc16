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
echo "== training the seed ConvNet on Fashion-MNIST (examples/train_seed_model.c) =="
./build/examples/train_seed_model --subset "${TFX_TUTORIAL_SUBSET:-10000}" --epochs "${TFX_TUTORIAL_EPOCHS:-2}" \
  --verbose 2 --out "$out/seed_model.tfx"
echo "model saved to $out/seed_model.tfx"
echo
echo "== training with tf-explain's ActivationsVisualizationCallback (examples/activation_visualization_training.c) =="
# A second short training run: the feature-map grid of visualization_layer goes to TensorBoard at
# the end of every epoch, with Keras-style loss/accuracy scalars (docs/tensorboard.md).
./build/examples/activation_visualization_training --subset "${TFX_TUTORIAL_SUBSET:-6000}" \
  --epochs "${TFX_TUTORIAL_EPOCHS:-2}" "$out/visualizations"

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
# This training run and the pictures below take about a minute on two idle cores (~100 CPU-s);
# raise the subsets for a better model: 10000 training images give ~86 % test accuracy, 6000 ~84 %.
# libtfx's own threads, one per core, with a one-thread OpenBLAS (tfx_model_set_threads;
# docs/performance.md: 1.3-1.5x faster training than leaving the threads to OpenBLAS).
OPENBLAS_NUM_THREADS=1 ./build/examples/train_seed_model --subset "${TFX_TUTORIAL_SUBSET:-6000}" \
  --epochs "${TFX_TUTORIAL_EPOCHS:-2}" --test-subset "${TFX_TUTORIAL_TEST_SUBSET:-2000}" --verbose 2 \
  --threads "$(nproc)" --out "$out/seed_model.tfx"
echo "model saved to $out/seed_model.tfx"
echo
echo "== after training: feature maps of visualization_layer (examples/activation_visualization_trained.c) =="
./build/examples/activation_visualization_trained --model "$out/seed_model.tfx" --out "$out"
echo
echo "== every explainer on four test images (examples/explain_all.c) =="
./build/examples/explain_all --model "$out/seed_model.tfx" --out "$out"
echo
echo "== a small ResNet, a graph model, trained the same way (examples/train_resnet.c) =="
# Keras's functional API in C (tfx_model_set_next_input, tfx_model_add_add): a 3x3 stem and max
# pool, three basic blocks (two with 1x1/2 projection shortcuts), global average pooling. ~22 CPU-s,
# less than the seed model; 86.0 % test accuracy against its 84.0 % (docs/training.md, "Measured").
OPENBLAS_NUM_THREADS=1 ./build/examples/train_resnet --subset "${TFX_TUTORIAL_SUBSET:-6000}" \
  --epochs "${TFX_TUTORIAL_EPOCHS:-2}" --test-subset "${TFX_TUTORIAL_TEST_SUBSET:-2000}" --verbose 2 \
  --threads "$(nproc)" --out "$out/resnet.tfx"
echo
echo "== every explainer on the ResNet, Grad-CAM inside a residual block (explain_all --layer block2_relu1) =="
./build/examples/explain_all --model "$out/resnet.tfx" --out "$out/resnet" --layer block2_relu1
echo
echo "pictures written to $out/:"
echo "  contact_sheet.png            start here: one row per test image (the input, then each method), labelled"
echo "  act.png                      feature maps of visualization_layer for test image 250 (the tutorial's act.png),"
echo "                               224-pixel tiles (--scale 1: tf-explain's 24-pixel ones)"
echo "  inputs.png                   the four test images of the method pictures, left to right"
echo "  <method>.png                 libtfx's default (paper-correct) picture of each method, one column per image,"
echo "                               224-pixel tiles (explain_all --scale / --scale-mode to change):"
echo "                               activations, vanilla_gradients, gradients_inputs, occlusion, grad_cam,"
echo "                               smooth_grad, integrated_gradients"
echo "  <method>_tfexplain.png       the same as tf-explain 0.3.1 renders it (TFX_COMPAT_TF_EXPLAIN), at its size"
echo "  grad_cam_map.png             the Grad-CAM heatmaps alone (image_weight 0)"
echo "  resnet/                      the same pictures for the small ResNet (a graph model, saved and loaded back),"
echo "                               Grad-CAM at block2_relu1, between the convolutions of block 2's residual branch:"
echo "                               resnet/contact_sheet.png, resnet/grad_cam.png, ..."
echo "docs/methods.md (\"Pictures of a trained model\") says what each one should show."
echo
echo "== training with tf-explain's ActivationsVisualizationCallback (examples/activation_visualization_training.c) =="
# A second short training run: the feature-map grid of visualization_layer goes to TensorBoard at
# the end of every epoch, with Keras-style loss/accuracy scalars (docs/tensorboard.md).
# Kept small so the whole tutorial stays near a minute; TFX_TUTORIAL_CALLBACK_SUBSET raises it.
./build/examples/activation_visualization_training --subset "${TFX_TUTORIAL_CALLBACK_SUBSET:-2000}" \
  --epochs "${TFX_TUTORIAL_EPOCHS:-2}" "$out/visualizations"
echo
echo "== a model libtfx did not train: a Keras 2.6 MNIST CNN saved by Keras (examples/explain_keras.c) =="
# The real Keras file of ../shared/fixtures (docs/keras.md), loaded with tfx_model_load_keras and
# explained on an MNIST test digit (examples/data/digit_2.png, from the ONNX Model Zoo's mnist-8).
keras_model=../shared/fixtures/keras/mnist_cnn_keras.h5
if [ -f "$keras_model" ] && [ -x ./build/examples/explain_keras ]; then
  ./build/examples/explain_keras "$keras_model" --image examples/data/digit_2.png --out "$out/keras"
else
  echo "skipped: $keras_model or the Keras importer (meson feature 'keras') is missing"
fi
echo
echo "== a model libtfx did not train: the ONNX Model Zoo's mnist-8 (CNTK export; examples/explain_onnx.c) =="
# The real ONNX file of ../shared/fixtures (docs/onnx.md), loaded with tfx_model_load_onnx and
# explained with Grad-CAM on the same digit; mnist-8 takes pixels in [0, 255] (--normalize raw).
onnx_model=../shared/fixtures/onnx/mnist_8/model.onnx
if [ -f "$onnx_model" ]; then
  mkdir -p "$out/onnx"
  ./build/examples/explain_onnx "$onnx_model" examples/data/digit_2.png --normalize raw \
    --method grad_cam --out "$out/onnx/mnist8_grad_cam.png"
else
  echo "skipped: $onnx_model is missing"
fi

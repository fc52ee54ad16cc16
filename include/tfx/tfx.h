/* libtfx: Keras-style ConvNets and tf-explain explainers in C11. Umbrella header. */
#ifndef TFX_TFX_H
#define TFX_TFX_H

#include "common.h"
#include "version.h"
#include "model.h"
#include "train.h"
#include "callbacks.h"
#include "image.h"
#include "explain.h"
#include "saving.h"
#include "data.h"
#include "tensorboard.h"
#include "onnx.h"
#include "keras.h"

#endif

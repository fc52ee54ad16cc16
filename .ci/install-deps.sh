#!/usr/bin/env bash
# Install what libtfx needs on Debian 12 (root). Skips apt when everything is present.
set -euo pipefail
pkgs=(build-essential g++ meson ninja-build pkg-config python3 libopenblas-dev libblas-dev
      libstb-dev libcmocka-dev zlib1g-dev valgrind protobuf-compiler dataset-fashion-mnist
      clang libclang-rt-14-dev abigail-tools libhdf5-dev libjansson-dev libzip-dev)
# ONNX import's slow test (test_onnx_torch_full) generates full-size torchvision models with
# Debian's python (skipped without them); python3-onnx also checks exported files (tests/onnx)
pkgs+=(python3-torch python3-torchvision python3-onnx)
# ONNX's backend node tests (test_onnx_conformance; skipped without them)
pkgs+=(libonnx-testdata)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

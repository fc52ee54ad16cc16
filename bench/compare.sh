#!/usr/bin/env bash
# Side-by-side benchmark: libtfx (tfx-bench) against PyTorch (torch_reference.py) doing the same
# work with the same thread count, interleaved mode by mode so both see the same machine load.
#
#   bench/compare.sh [build-dir]          (default: build)
#   env: THREADS (default: nproc) -> OPENBLAS_NUM_THREADS and torch.set_num_threads
#        ROUNDS (default 3): interleaved rounds; the table shows the median over rounds
#        REPS (default 5): timed repetitions inside each program run (median)
#        MODES (default "train infer explain rss")
#        TFX_THREADS_MODE (default own): "own" runs tfx-bench with --threads THREADS and a
#        one-thread OpenBLAS (tfx_model_set_threads: libtfx's own threads); "blas" with
#        OPENBLAS_NUM_THREADS=THREADS and libtfx following it (tfx_model_set_threads 0)
#        OPENBLAS_CORETYPE is passed through unchanged (both programs see the same OpenBLAS kernels;
#        unset it to let OpenBLAS pick the CPU's own, e.g. AVX-512 instead of Haswell/AVX2)
# Prints the raw lines, the machine load, and the ratio table (markdown).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bench="$build/bench/tfx-bench"
[ -x "$bench" ] || { echo "compare.sh: $bench not found (build first: ninja -C $build)" >&2; exit 1; }
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-5}
MODES=${MODES:-"train infer explain rss"}
TFX_THREADS_MODE=${TFX_THREADS_MODE:-own}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "threads $THREADS ($TFX_THREADS_MODE), rounds $ROUNDS, reps $REPS; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(autodetect)}; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    if [ "$TFX_THREADS_MODE" = own ]; then
      OPENBLAS_NUM_THREADS=1 "$bench" "$mode" --reps "$REPS" --threads "$THREADS"
    else
      "$bench" "$mode" --reps "$REPS"
    fi | sed "s/^/tfx /" | tee -a "$out/lines"
    /usr/bin/python3 bench/torch_reference.py "$mode" --reps "$REPS" --threads "$THREADS" \
      | sed "s/^/torch /" | tee -a "$out/lines"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

/usr/bin/python3 - "$out/lines" <<'PY'
import statistics, sys
vals = {}
units = {}
for line in open(sys.argv[1]):
    side, name, value, unit = line.split()
    vals.setdefault(name, {}).setdefault(side, []).append(float(value))
    units[name] = unit
targets = {"train_b50_images_per_s": 1.7, "inference_b256_images_per_s": 1.8,
           "vanilla_gradients_1_ms_per_image": 7.0, "integrated_gradients_1_ms_per_image": 2.2,
           "occlusion_1_ms_per_image": 1.7, "peak_rss_training_mb": 2.0}
print()
print("| measurement | libtfx | PyTorch | libtfx advantage | target |")
print("|---|---|---|---|---|")
for name, d in vals.items():
    if "tfx" not in d or "torch" not in d:
        continue
    a, b = statistics.median(d["tfx"]), statistics.median(d["torch"])
    higher_better = units[name] == "images/s"
    ratio = a / b if higher_better else b / a
    t = targets.get(name)
    mark = "" if t is None else (f">= {t}x " + ("ok" if ratio >= t else "MISSED"))
    print(f"| {name} | {a:.1f} {units[name]} | {b:.1f} {units[name]} | {ratio:.2f}x | {mark} |")
PY

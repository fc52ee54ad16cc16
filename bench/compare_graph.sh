#!/usr/bin/env bash
# ResNet-18 and MobileNetV2 at 224x224x3 (issue 17): libtfx (`tfx-bench graph`) against PyTorch
# (bench/torch_graph_reference.py, torchvision 0.14's models) and, for inference, ONNX Runtime
# (bench/ort_reference.js on the same torch models exported to ONNX), alternating the three
# programs round by round so all see the same machine load.
#
#   bench/compare_graph.sh [build-dir]          (default: build)
#   env: THREADS (default 2): tfx-bench --threads THREADS with OPENBLAS_NUM_THREADS=1 (libtfx's
#        own threads); torch.set_num_threads(THREADS); ORT intraOpNumThreads = THREADS
#        (PyTorch's Linear layers call OpenBLAS: it gets OPENBLAS_NUM_THREADS=THREADS, as in compare.sh)
#        ROUNDS (default 3), REPS (default 5: timed runs per program run, median, after a warm-up)
#        NETS (default "resnet18 mobilenetv2")
#        ORT_NODE_MODULES: the node_modules holding onnxruntime-node (default /work/ort/node_modules;
#        `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` there); ORT is skipped when
#        it is absent
# Prints the raw lines, the machine load, and the table (markdown): per measurement the median
# over rounds with min-max, and PyTorch / libtfx and ORT / libtfx (> 1: libtfx faster).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bench="$build/bench/tfx-bench"
[ -x "$bench" ] || { echo "compare_graph.sh: $bench not found (build first: ninja -C $build)" >&2; exit 1; }
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-5}
NETS=${NETS:-"resnet18 mobilenetv2"}
ORT_NODE_MODULES=${ORT_NODE_MODULES:-/work/ort/node_modules}
PY=/usr/bin/python3
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ort=0
if [ -d "$ORT_NODE_MODULES/onnxruntime-node" ] && command -v node > /dev/null; then
  ort=1
  for net in $NETS; do $PY bench/torch_graph_reference.py onnx --net "$net" --out "$out/$net.onnx"; done
else
  echo "compare_graph.sh: onnxruntime-node not found in $ORT_NODE_MODULES: ONNX Runtime skipped" >&2
fi

echo "threads $THREADS, rounds $ROUNDS, reps $REPS; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(autodetect)}; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for net in $NETS; do
    OPENBLAS_NUM_THREADS=1 "$bench" graph --net "$net" --reps "$REPS" --threads "$THREADS" | sed "s/^/tfx /" | tee -a "$out/lines"
    $PY bench/torch_graph_reference.py bench --net "$net" --reps "$REPS" --threads "$THREADS" \
      | sed "s/^/torch /" | tee -a "$out/lines"
    if [ $ort = 1 ]; then
      NODE_PATH="$ORT_NODE_MODULES" node bench/ort_reference.js --model "$out/$net.onnx" --net "$net" \
        --threads "$THREADS" --reps "$REPS" | sed "s/^/ort /" | tee -a "$out/lines"
    fi
  done
  echo "round $r done, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

$PY - "$out/lines" <<'PY'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    side, name, value, _unit = line.split()
    vals.setdefault(name, {}).setdefault(side, []).append(float(value))

def cell(v):
    return f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" if v else "-"

print()
print("| network | work | libtfx ms | PyTorch ms | ORT ms | PyTorch / libtfx | ORT / libtfx | goal 1.5x |")
print("|---|---|---|---|---|---|---|---|")
for name, d in vals.items():
    net, work = name.split("_", 1)
    t, p, o = d.get("tfx", []), d.get("torch", []), d.get("ort", [])
    rp = statistics.median(p) / statistics.median(t) if t and p else None
    ro = statistics.median(o) / statistics.median(t) if t and o else None
    goal = "-" if rp is None else ("ok" if rp >= 1.5 else "MISSED")
    print(f"| {net} | {work} | {cell(t)} | {cell(p)} | {cell(o)} | "
          f"{'-' if rp is None else f'{rp:.2f}x'} | {'-' if ro is None else f'{ro:.2f}x'} | {goal} |")
PY

#!/usr/bin/env node
// ONNX Runtime reference for the graph benchmarks (issue 17): inference of a torchvision model
// exported by bench/torch_graph_reference.py (opset 13, dynamic batch), batch 1 and batch 16,
// the same random-image work as `tfx-bench graph`'s infer_b1 / infer_b16.
//
//   NODE_PATH=/path/to/node_modules node bench/ort_reference.js --model FILE --net NAME
//       [--threads N] [--reps N]
//
// onnxruntime-node (CPU build): `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` in a
// directory outside the repository; NODE_PATH points at its node_modules.
// Session: intraOpNumThreads = --threads, interOpNumThreads = 1, sequential execution, all graph
// optimisations (ORT's default: BatchNorm folded into the convolutions, activations fused).
// Prints "NET_infer_b1 value ms" and "NET_infer_b16 value ms": medians over --reps after a warm-up.
'use strict';
const ort = require('onnxruntime-node');

function arg(name, def) {
    const i = process.argv.indexOf('--' + name);
    return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

function median(v) {
    const s = [...v].sort((a, b) => a - b);
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

async function main() {
    const model = arg('model');
    const net = arg('net', 'net');
    const threads = parseInt(arg('threads', '1'), 10);
    const reps = Math.max(1, parseInt(arg('reps', '5'), 10));
    if (!model) {
        console.error('usage: ort_reference.js --model FILE --net NAME [--threads N] [--reps N]');
        process.exit(2);
    }
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const input = session.inputNames[0];
    let s = 12345;  // deterministic images in [0, 1)
    for (const n of [1, 16]) {
        const data = new Float32Array(n * 3 * 224 * 224);
        for (let i = 0; i < data.length; i++) {
            s = (s * 1103515245 + 12345) >>> 0;
            data[i] = (s >>> 8) / 16777216;
        }
        const feeds = {[input]: new ort.Tensor('float32', data, [n, 3, 224, 224])};
        await session.run(feeds);  // warm-up
        const t = [];
        for (let r = 0; r < reps; r++) {
            const t0 = process.hrtime.bigint();
            await session.run(feeds);
            t.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        console.log(`${net}_infer_b${n} ${median(t).toFixed(2)} ms`);
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});

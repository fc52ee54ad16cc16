// Run an ONNX file with ONNX Runtime (onnxruntime-node) for tests/onnx/test_onnx_export_ort.c.
// usage: node ort_run.js MODULE_DIR MODEL.onnx INPUT.f32 N C H W OUTPUT.f32
// The input is raw little-endian float32 NCHW; the output tensor "output" is written raw.
'use strict';
const fs = require('fs');
const path = require('path');
const [moduleDir, model, input, n, c, h, w, output] = process.argv.slice(2);
const ort = require(path.join(moduleDir, 'onnxruntime-node'));

(async () => {
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const dims = [n, c, h, w].map(Number);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' });
  const r = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x), dims) });
  const y = r.output;
  fs.writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log('ort ' + require(path.join(moduleDir, 'onnxruntime-node', 'package.json')).version + ': output [' + y.dims.join(', ') + ']');
})().catch((e) => {
  console.error('ORT: ' + e);
  process.exit(1);
});

// run.js runs an ONNX model with onnxruntime-node, the check that Hermes's
// ONNX export is what a real runtime reads. Hermes's tests call it.
//
// Usage: node run.js MODEL.onnx INPUT.json   (INPUT: {"dims": [...], "data": [...]})
// Prints {"dims": [...], "data": [...]} of the model's first output.
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input] = process.argv.slice(2);
  const x = JSON.parse(fs.readFileSync(input, 'utf8'));
  const session = await ort.InferenceSession.create(model);
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', Float32Array.from(x.data), x.dims);
  const out = await session.run(feeds);
  const y = out[session.outputNames[0]];
  process.stdout.write(JSON.stringify({dims: y.dims, data: Array.from(y.data)}));
}

main().catch((e) => { console.error('run.js: ' + e.message); process.exit(1); });

// Reads BPMN files with bpmn-moddle and our descriptor, as the canvas does, and writes them back with saveXML:
// `node tools/roundtrip.mjs IN OUT [IN OUT ...]` prints one JSON line per file: {file, warnings} or {file, error}.
// Used by tests/test_bpmn_interop.py: what bpmn-js saves must import as the definition that was exported.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import BpmnModdle from 'bpmn-moddle';

const require = createRequire(import.meta.url);
const waooaw = require('../src/waooaw-moddle.json');
const args = process.argv.slice(2);

for (let i = 0; i + 1 < args.length; i += 2) {
  const moddle = new BpmnModdle({ waooaw });
  let out;
  try {
    const { rootElement, warnings } = await moddle.fromXML(readFileSync(args[i], 'utf8'), 'bpmn:Definitions');
    const { xml } = await moddle.toXML(rootElement, { format: true });
    writeFileSync(args[i + 1], xml);
    out = { file: args[i], warnings: warnings.map((w) => w.message) };
  } catch (err) {
    out = { file: args[i], error: err.message };
  }
  console.log(JSON.stringify(out));
}

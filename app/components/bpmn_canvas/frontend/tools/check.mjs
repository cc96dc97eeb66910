// Reads BPMN files the way bpmn.io does and lints them: `node tools/check.mjs FILE...` prints one JSON line per
// file: {file, warnings: [bpmn-moddle import warnings], lint: [{rule, id, message, category}]}.
// Used by tests/test_bpmn_interop.py (bpmn-moddle and bpmnlint are devDependencies of the canvas).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import BpmnModdle from 'bpmn-moddle';
import Linter from 'bpmnlint/lib/linter.js';
import NodeResolver from 'bpmnlint/lib/resolver/node-resolver.js';

const require = createRequire(import.meta.url);
const waooaw = require('../src/waooaw-moddle.json');
const config = { extends: 'bpmnlint:recommended' };

for (const file of process.argv.slice(2)) {
  const moddle = new BpmnModdle({ waooaw });
  const xml = readFileSync(file, 'utf8');
  let out;
  try {
    const { rootElement, warnings } = await moddle.fromXML(xml, 'bpmn:Definitions');
    const linter = new Linter({ config, resolver: new NodeResolver() });
    const reports = await linter.lint(rootElement);
    const lint = [];
    for (const [rule, items] of Object.entries(reports)) {
      for (const item of items) {
        lint.push({ rule, id: item.id, message: item.message, category: item.category });
      }
    }
    out = { file, warnings: warnings.map((w) => w.message), lint };
  } catch (err) {
    out = { file, error: err.message };
  }
  console.log(JSON.stringify(out));
}

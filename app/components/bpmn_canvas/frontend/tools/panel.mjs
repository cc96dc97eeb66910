// Applies property-panel field edits the way the canvas does (src/commands.js withFields) to a BPMN file read
// with bpmn-moddle, and writes it back: `node tools/panel.mjs IN EDITS.json OUT`, EDITS = {elementId: [tree...]}.
// Used by tests/test_app_designer.py: what the panel sends must come back as the fields it meant.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import BpmnModdle from 'bpmn-moddle';
import { withFields } from '../src/commands.js';

const require = createRequire(import.meta.url);
const waooaw = require('../src/waooaw-moddle.json');
const [input, editsFile, output] = process.argv.slice(2);
const moddle = new BpmnModdle({ waooaw });
const { rootElement, elementsById, warnings } = await moddle.fromXML(readFileSync(input, 'utf8'));
for (const [id, trees] of Object.entries(JSON.parse(readFileSync(editsFile, 'utf8')))) {
  const bo = elementsById[id];
  const ext = bo.extensionElements || moddle.create('bpmn:ExtensionElements', { values: [] });
  ext.values = withFields(moddle, ext.values, trees);
  bo.extensionElements = ext;
}
const { xml } = await moddle.toXML(rootElement, { format: true });
writeFileSync(output, xml);
console.log(JSON.stringify({ warnings: warnings.map((w) => w.message) }));

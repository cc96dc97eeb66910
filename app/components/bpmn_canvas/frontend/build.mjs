// Bundle the canvas into ../static (committed: the app needs no npm) and record what it was built from.
// Run with `make canvas` (npm ci + this script). tests/test_bpmn_canvas_bundle.py recomputes SOURCE_HASH.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
const out = join(here, '..', 'static');

// The inputs of the bundle, in a fixed order: the same list and digest as app/components/bpmn_canvas/bundle.py.
export function sources() {
  const files = ['build.mjs', 'package-lock.json', 'package.json'];
  for (const name of readdirSync(join(here, 'src')).sort()) {
    files.push(`src/${name}`);
  }
  return files;
}

export function sourceHash() {
  const hash = createHash('sha256');
  for (const file of sources()) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(here, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

mkdirSync(out, { recursive: true });
await build({
  entryPoints: { bundle: join(here, 'src', 'index.js') },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: out,
  legalComments: 'eof',
  loader: { '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.eot': 'dataurl', '.svg': 'dataurl' },
  logLevel: 'warning',
});
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
writeFileSync(join(out, 'SOURCE_HASH'), `${sourceHash()}\n`);
console.log(`canvas bundle written to ${out}`);

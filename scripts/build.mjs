// Bundles the CLI into dist/ and trains its code cache: a pcluster start reads one bundle, compiled
// from V8's code cache, instead of resolving and compiling hundreds of modules (it runs in front of
// podman: start-up time is the product). See sources/boot/codecache.ts.
import {build} from 'esbuild';
import {readFileSync, rmSync} from 'node:fs';
import {basename} from 'node:path';
import {tsImport} from 'tsx/esm/api';

const {version} = JSON.parse(readFileSync(new URL(`../package.json`, import.meta.url), `utf8`));

// Bundle names carry content hashes: without a clean start, old bundles and caches would pile up.
rmSync(new URL(`../dist`, import.meta.url), {recursive: true, force: true});

const common = {bundle: true, format: `cjs`, platform: `node`, target: `node20`, outdir: `dist`, legalComments: `none`, logLevel: `warning`};

// The bundle's name holds its content hash, and the loader holds the name: a code cache is only ever
// read for the bundle it was made from, whatever an upgrade does to files in place.
const main = await build({
  ...common,
  entryPoints: {main: `sources/main.ts`},
  entryNames: `[name]-[hash]`,
  outExtension: {'.js': `.cjs`},
  define: {__PCLUSTER_VERSION__: JSON.stringify(version)},
  metafile: true,
});
const [bundle] = Object.keys(main.metafile.outputs);

await build({
  ...common,
  entryPoints: {pcluster: `sources/boot/loader.ts`},
  outExtension: {'.js': `.cjs`},
  define: {__PCLUSTER_BUNDLE__: JSON.stringify(basename(bundle))},
});

const {trainCodeCache} = await tsImport(`../sources/boot/train.ts`, import.meta.url);
await trainCodeCache(`dist/pcluster.cjs`);

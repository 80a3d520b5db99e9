// Bundles the CLI into dist/: one entry, dependencies inlined, so a pcluster start reads one file
// instead of resolving hundreds of modules (it runs in front of podman, start-up time is the product).
import {build} from 'esbuild';
import {readFileSync, rmSync} from 'node:fs';

const {version} = JSON.parse(readFileSync(new URL(`../package.json`, import.meta.url), `utf8`));

// Chunk names carry content hashes: without a clean start, old chunks would pile up.
rmSync(new URL(`../dist`, import.meta.url), {recursive: true, force: true});

await build({
  entryPoints: {pcluster: `sources/main.ts`},
  outdir: `dist`,
  bundle: true,
  splitting: true,
  format: `esm`,
  platform: `node`,
  target: `node20`,
  outExtension: {'.js': `.mjs`},
  chunkNames: `chunks/[name]-[hash]`,
  define: {__PCLUSTER_VERSION__: JSON.stringify(version)},
  // Some bundled CommonJS dependencies call require() on Node built-ins.
  banner: {js: `import {createRequire as __pclusterRequire} from 'node:module'; const require = __pclusterRequire(import.meta.url);`},
  legalComments: `none`,
  logLevel: `warning`,
});

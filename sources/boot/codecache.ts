/**
 * Node 20 caches no compiled code between runs (module.enableCompileCache came in Node 22), so every
 * pcluster start would parse and compile the whole bundle again: about 50 ms of a `run
 * --shared-base-layers` decision. The loader (loader.ts) runs the bundle through V8's code cache
 * instead, from a file next to the bundle. The cache is written by a training run (train.ts) at
 * build and at install-shims, never by ordinary runs: the bundle's directory belongs to whoever
 * installed pcluster, and whoever can write the cache chooses the code pcluster runs.
 */

/**
 * A bundle's cache lives next to it. The bundle's name carries its content hash (scripts/build.mjs):
 * V8 only checks a cache against the source's length, and a cache must never be read for another
 * bundle of the same length.
 */
export function codeCachePath(bundle: string): string {
  return `${bundle}.cache`;
}

/** Set to any value, the loader writes the cache at exit, from what this run compiled. */
export const WRITE_CODE_CACHE_ENV = `PCLUSTER_WRITE_CODE_CACHE`;

/** What the loader found: used, rejected by V8 (built by another Node version or with other flags), absent. */
export type CodeCacheState = `used` | `rejected` | `absent` | `not loaded through the loader`;

// The loader and the bundle are separate files with separate module copies: a registered symbol is
// the one name both see.
const STATE_KEY = Symbol.for(`pcluster.codeCache`);

export function recordCodeCacheState(state: CodeCacheState): void {
  (globalThis as Record<symbol, unknown>)[STATE_KEY] = state;
}

export function codeCacheState(): CodeCacheState {
  const state = (globalThis as Record<symbol, unknown>)[STATE_KEY];
  return typeof state === `string` ? state as CodeCacheState : `not loaded through the loader`;
}

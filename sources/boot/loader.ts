import {readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {join} from 'node:path';
import {Script} from 'node:vm';

import {codeCachePath, recordCodeCacheState, WRITE_CODE_CACHE_ENV} from './codecache.js';

/**
 * dist/pcluster.cjs, what the shim starts: runs the bundle (dist/main-HASH.cjs) compiled from V8's
 * code cache when there is a usable one (see codecache.ts). A missing or rejected cache only costs
 * the compile time it would have saved.
 */
declare const __PCLUSTER_BUNDLE__: string;

const bundle = join(__dirname, __PCLUSTER_BUNDLE__);
const cacheFile = codeCachePath(bundle);
const cachedData = readOptional(cacheFile);
// The same wrapper Node puts around a CommonJS module, so the bundle runs as if required.
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, `utf8`)}\n})`, {filename: bundle, cachedData});
recordCodeCacheState(cachedData === undefined ? `absent` : script.cachedDataRejected === true ? `rejected` : `used`);

if (process.env[WRITE_CODE_CACHE_ENV] !== undefined) {
  // At exit: the cache then also holds the functions this run compiled, not just the top level.
  process.once(`exit`, () => {
    const temporary = `${cacheFile}.${process.pid}`;
    try {
      writeFileSync(temporary, script.createCachedData());
      renameSync(temporary, cacheFile);
    } catch (error) {
      rmSync(temporary, {force: true});
      process.stderr.write(`pcluster: cannot write the code cache ${cacheFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
      process.exitCode = 1;
    }
  });
}

const bundleModule = {exports: {}};
(script.runInThisContext() as (...args: unknown[]) => void)(bundleModule.exports, createRequire(bundle), bundleModule, bundle, __dirname);

function readOptional(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

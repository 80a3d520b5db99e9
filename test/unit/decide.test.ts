import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';

import {currentIdentity, resolveConfig} from '../../sources/config/load.js';
import {parsePodmanArgv} from '../../sources/podman/argv.js';
import {recordingEnv} from '../../sources/run/plancache.js';
import {runRequest} from '../../sources/run/request.js';
import {decide, type Context} from '../../sources/run/shared.js';

/**
 * The run decision without podman: a command line and an environment in, a decision out. These are
 * the fallbacks decided before anything of podman's runs (the integration suite covers the rest).
 */
function decision(argv: readonly string[], env: Record<string, string>) {
  const request = runRequest(argv, parsePodmanArgv(argv));
  if (request === null)
    throw new Error(`not a shared-base-layers command line: ${argv.join(` `)}`);
  const recorder = recordingEnv({PATH: process.env.PATH, ...env});
  const context: Context = {
    launch: {podman: `/nonexistent/podman`, execFd: 3, invokedAs: `podman`},
    config: resolveConfig([], recorder.env, currentIdentity(recorder.env)),
    recorder,
    env: recorder.env,
    inputs: [],
    rootless: false,
  };
  return decide(request, context);
}

let dir: string;

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), `pcluster-decide-unit-`));
});

test.after.always(() => {
  rmSync(dir, {recursive: true, force: true});
});

test(`containers that run elsewhere: the fallback names how (an option, or CONTAINER_HOST)`, async t => {
  t.deepEqual(await decision([`--remote`, `run`, `--shared-base-layers`, `img`], {PCLUSTER_STORE: dir}),
    {kind: `fallback`, reason: `podman talks to a remote service (--remote); shared stores are node-local mounts`});
  t.deepEqual(await decision([`--connection`, `hpc`, `run`, `--shared-base-layers`, `img`], {PCLUSTER_STORE: dir}),
    {kind: `fallback`, reason: `podman talks to a remote service (hpc); shared stores are node-local mounts`});
  t.deepEqual(await decision([`run`, `--shared-base-layers`, `img`], {PCLUSTER_STORE: dir, CONTAINER_HOST: `ssh://h/run/podman.sock`}),
    {kind: `fallback`, reason: `podman talks to a remote service (CONTAINER_HOST=ssh://h/run/podman.sock); shared stores are node-local mounts`});
  t.like(await decision([`--remote=false`, `run`, `--shared-base-layers`, `img`], {}), {kind: `fallback`}, `--remote=false is local`);
  t.notRegex((await decision([`--remote=false`, `run`, `--shared-base-layers`, `img`], {}) as {reason: string}).reason, /remote/);
});

test(`no store configured, or a store that is not there`, async t => {
  t.deepEqual(await decision([`run`, `--shared-base-layers`, `img`], {}),
    {kind: `fallback`, reason: `no shared store is configured (set PCLUSTER_STORE or stores in a config file)`});
  const missing = join(dir, `not-mounted`);
  const result = await decision([`run`, `--shared-base-layers`, `img`], {PCLUSTER_STORE: missing});
  t.is(result.kind, `fallback`);
  t.regex((result as {reason: string}).reason, new RegExp(`${missing} does not exist`));
});

test(`a storage driver other than overlay: the fallback says which`, async t => {
  t.deepEqual(await decision([`--storage-driver`, `vfs`, `run`, `--shared-base-layers`, `img`], {PCLUSTER_STORE: dir}),
    {kind: `fallback`, reason: `podman uses the vfs storage driver; shared stores need overlay`});
});

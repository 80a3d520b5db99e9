import {randomBytes} from 'node:crypto';
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';

import {importBusybox, makeNode, type TestNode} from '../helpers/node.js';
import {eventually, initStore, mountsOfType, pcluster, storeEnv, watcherProcesses} from '../helpers/store.js';

/**
 * GPU jobs (#21): `--device VENDOR/CLASS=NAME` is a CDI device, which podman resolves from the CDI
 * specs it reads (nvidia-ctk writes one for NVIDIA GPUs) and injects into the container's OCI spec:
 * device nodes, bind mounts, environment. With `--shared-base-layers` the container must get the same
 * from an image in the squash store as from a local one.
 *
 * The stand-in spec injects /dev/null as /dev/pcluster-gpu0 (a character device, like /dev/nvidia0),
 * a bind mount of a host file (like the driver's libraries) and a variable. cdiVersion 0.5.0: the
 * newest version podman 4.3's CDI library takes (it rejects 0.6.0: "unresolvable CDI devices"), and
 * the first with a device node's hostPath; newer libraries take every version from 0.3.0 on.
 *
 * Where podman reads the spec from: `cdi_spec_dirs` in containers.conf ([engine]) is read only by
 * podman 5.5 and later (containers/podman#25717, which also added `--cdi-spec-dir`); podman 4.3 does
 * not know the key and podman 5.0-5.4 parse it without using it, reading only the default dirs
 * /etc/cdi and /var/run/cdi. So the test asks podman itself: the spec in a temporary dir named by
 * the nodes' containers.conf, and where this podman does not resolve the device from there, the same
 * spec (of a kind unique to this run) in /run/cdi, then /etc/cdi, removed afterwards.
 */
const KIND = `example.com/pcluster-gpu-${randomBytes(4).toString(`hex`)}`;
const DEVICE = `${KIND}=all`;
const TOKEN = randomBytes(8).toString(`hex`);
// The container's view: the device node (type, major:minor in hex), that it takes a write, the host
// file, the variable; an exit code of its own.
const SCRIPT = `stat -c '%F %t:%T' /dev/pcluster-gpu0; echo probe > /dev/pcluster-gpu0 && echo writable; cat /etc/pcluster-gpu.conf; echo "gpu=$PCLUSTER_GPU"; exit 3`;
const EXPECTED = `character special file 1:3\nwritable\nhost file ${TOKEN}\ngpu=all\n`;
const ABSENT = `test -e /dev/pcluster-gpu0 || echo no device; test -e /etc/pcluster-gpu.conf || echo no file; echo "gpu=$PCLUSTER_GPU"`;

let scratch: string;
let builder: TestNode;
let runner: TestNode;
const placed: string[] = [];
const createdDirs: string[] = [];

function specText(hostFile: string): string {
  return `${JSON.stringify({
    cdiVersion: `0.5.0`,
    kind: KIND,
    devices: [{
      name: `all`,
      containerEdits: {
        deviceNodes: [{path: `/dev/pcluster-gpu0`, hostPath: `/dev/null`}],
        mounts: [{hostPath: hostFile, containerPath: `/etc/pcluster-gpu.conf`, options: [`ro`, `bind`]}],
        env: [`PCLUSTER_GPU=all`],
      },
    }],
  }, null, 2)}\n`;
}

/** The node's containers.conf (test/helpers/node.ts) with `cdi_spec_dirs` in its [engine] table. */
function addSpecDir(node: TestNode, dir: string): void {
  const conf = node.env.CONTAINERS_CONF!;
  const text = readFileSync(conf, `utf8`);
  if (!text.includes(`[engine]\n`))
    throw new Error(`${conf} has no [engine] table`);
  writeFileSync(conf, text.replace(`[engine]\n`, `[engine]\ncdi_spec_dirs = [${JSON.stringify(dir)}]\n`));
}

/** Where this podman found the spec: the first place from which the builder's podman resolves the device. */
async function placeSpec(spec: string): Promise<string> {
  const probe = () => builder.podman([`run`, `--rm`, `--network`, `none`, `--device`, DEVICE, `localhost/busybox:test`, `true`]);
  const first = await probe();
  if (first.exitCode === 0)
    return `cdi_spec_dirs in containers.conf`;
  const failures = [`containers.conf: ${first.stderr.trim()}`];
  for (const dir of [`/run/cdi`, `/etc/cdi`]) {
    if (!existsSync(dir)) {
      mkdirSync(dir, {recursive: true});
      createdDirs.unshift(dir);
    }
    const file = join(dir, `${KIND.replace(/[^a-z0-9]+/g, `-`)}.json`);
    writeFileSync(file, spec);
    placed.push(file);
    const again = await probe();
    if (again.exitCode === 0)
      return `${dir} (this podman does not read cdi_spec_dirs)`;
    failures.push(`${dir}: ${again.stderr.trim()}`);
    rmSync(file, {force: true});
  }
  throw new Error(`podman resolved ${DEVICE} from none of the places tried:\n${failures.join(`\n`)}`);
}

test.before(async t => {
  scratch = mkdtempSync(join(tmpdir(), `pcluster-cdi-`));
  const hostFile = join(scratch, `host-file`);
  writeFileSync(hostFile, `host file ${TOKEN}\n`);
  const specDir = join(scratch, `cdi`);
  mkdirSync(specDir);
  const spec = specText(hostFile);
  writeFileSync(join(specDir, `pcluster-gpu.json`), spec);
  builder = makeNode(`cdi-builder`);
  runner = makeNode(`cdi-runner`);
  for (const node of [builder, runner])
    addSpecDir(node, specDir);
  await importBusybox(builder);
  t.log(`CDI spec (cdiVersion 0.5.0, kind ${KIND}) read from ${await placeSpec(spec)}`);
});

test.after.always(async () => {
  await runner?.podman([`rm`, `-af`, `-t0`]);
  if (runner !== undefined) {
    const state = join(runner.dir, `mount-state`);
    await eventually(`squash mounts of ${runner.dir} released`, 20, () => mountsOfType(`squashfs`, state).length === 0).catch(() => {});
    for (const pid of watcherProcesses(state))
      process.kill(pid, `SIGKILL`);
  }
  await runner?.cleanup();
  await builder?.cleanup();
  for (const file of placed)
    rmSync(file, {force: true});
  for (const dir of createdDirs) {
    if (existsSync(dir) && readdirSync(dir).length === 0)
      rmdirSync(dir);
  }
  if (scratch !== undefined)
    rmSync(scratch, {recursive: true, force: true});
});

test.serial(`--device with a CDI device: the container sees the injected device node and host file, from the squash store as from a local image`, async t => {
  const run = [`run`, `--rm`, `--network`, `none`, `--device`, DEVICE];
  const local = await builder.podman([...run, `localhost/busybox:test`, `sh`, `-c`, SCRIPT], {stripFinalNewline: false});
  t.deepEqual([local.exitCode, local.stdout, local.stderr], [3, EXPECTED, ``], `plain podman, local image`);

  const store = join(builder.dir, `store`);
  initStore(store);
  const migrated = await pcluster(builder, [`migrate`, `--store`, store, `localhost/busybox:test`]);
  t.is(migrated.exitCode, 0, migrated.stderr);

  // The runner has an empty graphroot: the image can only come from the store, and strict mode turns
  // any fallback to podman's own storage into a failure.
  const env = storeEnv(runner, store, {PCLUSTER_STRICT: `1`});
  const shared = await pcluster(runner, [...run, `--shared-base-layers`, `localhost/busybox:test`, `sh`, `-c`, SCRIPT], env);
  t.deepEqual([shared.exitCode, shared.stdout, shared.stderr], [local.exitCode, local.stdout, local.stderr], `pcluster run --shared-base-layers, store image`);
  t.is((await runner.podman([`images`, `-q`])).stdout, ``, `nothing pulled into the runner's graphroot`);

  // Without --device nothing of the spec is there: what the container saw came from CDI.
  const without = await pcluster(runner, [`run`, `--rm`, `--network`, `none`, `--shared-base-layers`, `localhost/busybox:test`, `sh`, `-c`, ABSENT], env);
  t.deepEqual([without.exitCode, without.stdout, without.stderr], [0, `no device\nno file\ngpu=\n`, ``]);
});

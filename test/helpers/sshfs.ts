import {execFileSync} from 'node:child_process';
import {mkdirSync, readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync} from 'node:fs';
import {createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa, type ResultPromise} from 'execa';

import {unmountUnder} from './node.js';

/**
 * A live network filesystem on one machine: sshd on 127.0.0.1 (own host key, own authorized key,
 * nothing of the machine's ssh setup touched) and an sshfs mount of a served directory.
 */
export interface SshfsMount {
  readonly served: string;
  readonly mountPoint: string;
  /** Freeze the server side (SIGSTOP): every request on the mount now blocks, as with a dead NFS server. */
  freeze(): void;
  thaw(): void;
  cleanup(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, `127.0.0.1`, () => {
      const address = server.address();
      server.close(() => typeof address === `object` && address !== null ? resolve(address.port) : reject(new Error(`no port`)));
    });
  });
}

/**
 * latencyMs: one-way delay added to every packet (a relay between sshfs and sshd), 0 for none.
 * symlinks: `server` resolves them on the server (follow_symlinks); `client` leaves them to the
 * client, as NFS does (no_contain_symlinks), so a store can be written through the mount; `contained`
 * is sshfs's default, which answers readlink with EPERM for targets containing `..`: a mount that
 * hides links it has just written.
 */
export type SymlinkMode = `server` | `client` | `contained`;
const SYMLINK_OPTIONS: Record<SymlinkMode, string> = {server: `follow_symlinks,`, client: `no_contain_symlinks,`, contained: ``};

export async function mountSshfs({latencyMs = 0, symlinks = `server` as SymlinkMode} = {}): Promise<SshfsMount> {
  const dir = mkdtempSync(join(tmpdir(), `pcluster-sshfs-`));
  const served = join(dir, `served`);
  const mountPoint = join(dir, `mnt`);
  mkdirSync(served);
  mkdirSync(mountPoint);
  execFileSync(`ssh-keygen`, [`-q`, `-t`, `ed25519`, `-N`, ``, `-f`, join(dir, `host_key`)]);
  execFileSync(`ssh-keygen`, [`-q`, `-t`, `ed25519`, `-N`, ``, `-f`, join(dir, `client_key`)]);
  writeFileSync(join(dir, `authorized_keys`), readFileSync(join(dir, `client_key.pub`)), {mode: 0o600});
  const port = await freePort();
  writeFileSync(join(dir, `sshd_config`), [
    `ListenAddress 127.0.0.1`, `Port ${port}`, `HostKey ${join(dir, `host_key`)}`,
    `AuthorizedKeysFile ${join(dir, `authorized_keys`)}`, `PermitRootLogin prohibit-password`,
    `PasswordAuthentication no`, `StrictModes no`, `UsePAM no`, `PidFile ${join(dir, `sshd.pid`)}`,
    `Subsystem sftp internal-sftp`, ``,
  ].join(`\n`));
  mkdirSync(`/run/sshd`, {recursive: true});
  const sshd: ResultPromise = execa(`/usr/sbin/sshd`, [`-D`, `-e`, `-f`, join(dir, `sshd_config`)], {reject: false, stdin: `ignore`});
  const user = execFileSync(`id`, [`-un`], {encoding: `utf8`}).trim();
  let relay: ResultPromise | null = null;
  let sshfsPort = port;
  if (latencyMs > 0) {
    relay = execa(`node`, [new URL(`latency-proxy.mjs`, import.meta.url).pathname, String(port), String(latencyMs)], {reject: false, stdin: `ignore`, buffer: false});
    sshfsPort = await new Promise<number>(resolve => relay!.stdout!.once(`data`, (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
  }
  let mounted = false;
  for (let attempt = 0; attempt < 50 && !mounted; attempt += 1) {
    const result = await execa(`sshfs`, [
      `${user}@127.0.0.1:${served}`, mountPoint, `-p`, String(sshfsPort),
      `-o`, `IdentityFile=${join(dir, `client_key`)},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,allow_other,${SYMLINK_OPTIONS[symlinks]}ServerAliveInterval=0`,
    ], {reject: false, stdin: `ignore`});
    mounted = result.exitCode === 0;
    if (!mounted)
      await new Promise(resolve => setTimeout(resolve, 100));
  }
  if (!mounted) {
    relay?.kill();
    sshd.kill();
    throw new Error(`sshfs mount over loopback failed`);
  }
  // The per-connection sshd processes serve the mount; stopping them freezes the filesystem.
  const sessionPids = () => descendants(sshd.pid!);
  return {
    served,
    mountPoint,
    freeze: () => sessionPids().forEach(pid => process.kill(pid, `SIGSTOP`)),
    thaw: () => sessionPids().forEach(pid => process.kill(pid, `SIGCONT`)),
    cleanup: async () => {
      sessionPids().forEach(pid => process.kill(pid, `SIGCONT`));
      unmountUnder(dir);
      relay?.kill();
      sshd.kill();
      await Promise.all([sshd, relay]);
      rmSync(dir, {recursive: true, force: true});
    },
  };
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync(`/proc`)) {
    if (!/^\d+$/.test(entry))
      continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, `utf8`);
      const parent = Number(stat.slice(stat.lastIndexOf(`)`) + 2).split(` `)[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // The process exited while we looked.
    }
  }
  const found: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.shift()!;
    found.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return found;
}

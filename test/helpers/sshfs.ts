import {execFileSync} from 'node:child_process';
import {mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa, type ResultPromise} from 'execa';

import {startLatencyRelay, freePort} from './net.js';
import {descendants, unmountUnder} from './node.js';

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
  const relay = latencyMs > 0 ? await startLatencyRelay(port, latencyMs) : null;
  const sshfsPort = relay?.port ?? port;
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
    await relay?.stop();
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
      await relay?.stop();
      sshd.kill();
      await sshd;
      rmSync(dir, {recursive: true, force: true});
    },
  };
}

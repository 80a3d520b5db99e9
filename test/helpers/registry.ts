import {spawn, type ChildProcess} from 'node:child_process';
import {mkdirSync, writeFileSync} from 'node:fs';
import {connect} from 'node:net';
import {join} from 'node:path';

import {freePort} from './net.js';

/**
 * A local registry: Debian's docker-registry on 127.0.0.1, storage under a directory of the caller,
 * plain HTTP (podman: --tls-verify=false). No registry on the internet is reachable from CI.
 */
export interface Registry {
  readonly address: string;
  stop(): Promise<void>;
}

/** Starts it; resolves once it accepts connections. */
export async function startRegistry(dir: string): Promise<Registry> {
  mkdirSync(join(dir, `data`), {recursive: true});
  const port = await freePort();
  writeFileSync(join(dir, `config.yml`), `version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: ${join(dir, `data`)}
http:
  addr: 127.0.0.1:${port}
`);
  const child: ChildProcess = spawn(`docker-registry`, [`serve`, join(dir, `config.yml`)], {stdio: `ignore`});
  const address = `127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await reachable(port))
      break;
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  return {
    address,
    stop: async () => {
      // It may be gone already: a node's cleanup kills what runs on its files, and a registry kept
      // under a node's directory is such a process. Its exit event has then been and gone.
      if (child.exitCode !== null || child.signalCode !== null)
        return;
      const exited = new Promise(resolve => child.once(`exit`, resolve));
      child.kill();
      await exited;
    },
  };
}

async function reachable(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect(port, `127.0.0.1`, () => {
      socket.end();
      resolve(true);
    });
    socket.on(`error`, () => resolve(false));
  });
}

import {chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';

/**
 * /dev/fuse opened to every user (0666) for rootless FUSE mounts (the CI machines ship it 0600), and
 * put back when the last test file holding it lets go: test files run side by side, and one that
 * restored the mode while another's unprivileged user mounted would fail the other.
 */
const DEVICE = `/dev/fuse`;
const DIR = `/run/pcluster-test-fuse`;

export function openFuseToUsers(): () => void {
  withLock(() => {
    try {
      writeFileSync(join(DIR, `mode`), String(statSync(DEVICE).mode & 0o777), {flag: `wx`});
    } catch {
      // Another holder recorded the original mode first.
    }
    writeFileSync(join(DIR, `holder-${process.pid}`), ``);
    chmodSync(DEVICE, 0o666);
  });
  return () => withLock(() => {
    rmSync(join(DIR, `holder-${process.pid}`), {force: true});
    // A holder that died without letting go holds nothing.
    for (const entry of readdirSync(DIR).filter(entry => entry.startsWith(`holder-`) && !alive(Number(entry.slice(`holder-`.length)))))
      rmSync(join(DIR, entry), {force: true});
    if (readdirSync(DIR).every(entry => !entry.startsWith(`holder-`))) {
      chmodSync(DEVICE, Number(readFileSync(join(DIR, `mode`), `utf8`)));
      rmSync(join(DIR, `mode`), {force: true});
    }
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `body` under a mkdir lock (taken over after 10 s: a holder killed mid-way). */
function withLock(body: () => void): void {
  mkdirSync(DIR, {recursive: true});
  const lock = join(DIR, `lock`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) {
        rmSync(lock, {recursive: true, force: true});
        continue;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    body();
  } finally {
    rmSync(lock, {recursive: true, force: true});
  }
}

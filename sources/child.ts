import {execa, type Result} from 'execa';

/**
 * Children that may touch a filesystem which stops answering (a store's server gone, a frozen mount):
 * a process stuck in the kernel may not even die of SIGKILL until the server answers, so past the
 * time limit it is abandoned, not waited for.
 */
export interface AbandonableOptions {
  readonly seconds: number;
  readonly env?: Record<string, string>;
  /** Replace the environment instead of adding to it. */
  readonly extendEnv?: boolean;
}

export type AbandonableOutcome = Result<{reject: false, stdin: `ignore`, stripFinalNewline: false}> | `timeout`;

export async function runAbandonable(file: string, args: readonly string[], options: AbandonableOptions): Promise<AbandonableOutcome> {
  const child = execa(file, args, {
    reject: false,
    stdin: `ignore`,
    stripFinalNewline: false,
    env: options.env ?? {},
    extendEnv: options.extendEnv ?? true,
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<`timeout`>(resolve => {
    timer = setTimeout(() => resolve(`timeout`), options.seconds * 1000);
  });
  const outcome = await Promise.race([child, timeout]);
  clearTimeout(timer);
  if (outcome === `timeout`)
    abandon(child);
  return outcome;
}

/** Killed, its pipes closed, and no longer keeping the event loop alive: we stop caring about it. */
function abandon(child: ReturnType<typeof execa>): void {
  child.kill(`SIGKILL`);
  child.catch(() => {});
  child.stdout?.destroy();
  child.stderr?.destroy();
  child.unref();
}

import {createServer} from 'node:net';
import {execa, type ResultPromise} from 'execa';

/** Loopback networking for tests and benches: free ports, and latency where the kernel has no netem. */

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, `127.0.0.1`, () => {
      const address = server.address();
      server.close(() => typeof address === `object` && address !== null ? resolve(address.port) : reject(new Error(`no port`)));
    });
  });
}

export interface LatencyRelay {
  /** The relay's port on 127.0.0.1: connect here instead of the target. */
  readonly port: number;
  stop(): Promise<void>;
}

/** A TCP relay (latency-proxy.mjs, its own process) to 127.0.0.1:targetPort adding latencyMs each way. */
export async function startLatencyRelay(targetPort: number, latencyMs: number): Promise<LatencyRelay> {
  const relay: ResultPromise = execa(`node`, [new URL(`latency-proxy.mjs`, import.meta.url).pathname, String(targetPort), String(latencyMs)], {reject: false, stdin: `ignore`, buffer: false});
  const port = await new Promise<number>(resolve => relay.stdout!.once(`data`, (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
  return {
    port,
    stop: async () => {
      relay.kill();
      await relay;
    },
  };
}

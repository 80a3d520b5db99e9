// A TCP relay that adds a fixed one-way delay to every chunk in both directions: network latency
// for a loopback filesystem (the kernels here have no netem). Its own process, so a busy caller's
// event loop cannot stall it.  Usage: node latency-proxy.mjs TARGET_PORT DELAY_MS  (prints its port)
import {createServer, connect} from 'node:net';

const [targetPort, delayMs] = process.argv.slice(2).map(Number);

function delayed(from, to) {
  from.on(`data`, chunk => {
    // Equal delays fire in order, so the stream stays ordered.
    setTimeout(() => to.write(chunk), delayMs);
  });
  from.on(`end`, () => setTimeout(() => to.end(), delayMs));
  from.on(`error`, () => to.destroy());
}

const server = createServer(client => {
  client.setNoDelay(true);
  const upstream = connect(targetPort, `127.0.0.1`);
  upstream.setNoDelay(true);
  delayed(client, upstream);
  delayed(upstream, client);
});
server.listen(0, `127.0.0.1`, () => process.stdout.write(`${server.address().port}\n`));

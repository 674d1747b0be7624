import { createServer } from 'node:net';

// A port is chosen here and bound later by another program (the Temporal dev server, NATS, a worker process). A port
// from the kernel's ephemeral range (listen(0), 32768-60999 on Linux) may meanwhile be taken by any outgoing connection
// or listen(0) of any process, and the start fails with EADDRINUSE (seen in CI with suites running side by side). So the
// ports come from below that range, at random, never the same twice in one process; listen(0) only if none is free.
const LOW = 20_000;
const HIGH = 32_000;
const handedOut = new Set<number>();

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (for servers started on the side). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(candidate)) continue;
    handedOut.add(candidate); // before awaiting: a concurrent call must not pick it too
    if ((await tryListen(candidate)) !== undefined) return candidate;
    handedOut.delete(candidate);
  }
  const port = await tryListen(0);
  if (port === undefined) throw new Error('no free TCP port on 127.0.0.1');
  handedOut.add(port);
  return port;
}

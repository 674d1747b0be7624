// A TCP proxy in front of PostgreSQL that makes the server's "ready" answer and whatever follows it reach a client
// in one read: it forwards the server's messages up to a ReadyForQuery, then holds that message and everything after
// it until the server closes the connection, and writes them all at once. Which ReadyForQuery: the first of the first
// replication connection through it (its startup), and the next one of any connection once `holdNextReady()` is
// called (the end of a query). Everything else passes straight through. It reproduces, on demand, a server that ends
// a connection (a shutdown, pg_terminate_backend) right as the client finishes connecting or finishes a query.
import net from 'node:net';

const READY_FOR_QUERY = 0x5a; // 'Z'

export interface HoldingProxy {
  port: number;
  /** Resolves once a ReadyForQuery is held. */
  holding: Promise<void>;
  /** On the next connection the server sends anything to, holds its next ReadyForQuery and what follows (once). */
  holdNextReady(): void;
  close(): Promise<void>;
}

export async function startHoldingProxy(target: { host: string; port: number }): Promise<HoldingProxy> {
  let heldOne = false;
  let armed = false;
  let onHolding!: () => void;
  const holding = new Promise<void>((resolve) => (onHolding = resolve));
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    let hold = false;
    let pending = Buffer.alloc(0);
    let held: Buffer[] | undefined;

    client.on('data', (chunk: Buffer) => {
      // The startup message names its parameters: a replication connection has `replication`.
      if (!heldOne && chunk.includes(Buffer.from('replication\0'))) hold = heldOne = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (held) return void held.push(chunk);
      if (armed) [hold, armed] = [true, false];
      if (!hold) return void client.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      // Whole messages (a type byte, then a length that counts itself) up to the first ReadyForQuery.
      let offset = 0;
      while (pending.length - offset >= 5) {
        if (pending[offset] === READY_FOR_QUERY) {
          client.write(pending.subarray(0, offset));
          held = [pending.subarray(offset)];
          onHolding();
          return;
        }
        const length = pending.readUInt32BE(offset + 1);
        if (pending.length - offset < 1 + length) break;
        offset += 1 + length;
      }
      client.write(pending.subarray(0, offset));
      pending = pending.subarray(offset);
    });
    // The server closed: what it said is written in one go, and the client sees the connection end after it.
    upstream.on('close', () => (held ? client.end(Buffer.concat(held)) : client.end()));
    client.on('close', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    holding,
    holdNextReady: () => {
      armed = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

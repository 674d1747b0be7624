// One logical replication connection to PostgreSQL, on pg's client: it streams a slot, hands each XLogData message's
// payload over one at a time (the socket is paused while one is handled, so a slow handler holds the server back
// rather than filling memory), hands keepalives over as they arrive, and sends the standby status updates it is told
// to. What to confirm, and when, is the WAL relay's decision (wal-relay.ts).
//
// The protocol (PostgreSQL's "Streaming Replication Protocol"): after START_REPLICATION the server sends CopyData
// messages, 'w' XLogData (start LSN, end LSN, send time, then the output plugin's message) and 'k' primary keepalive
// (end LSN, send time, reply requested); the client answers with 'r' standby status updates (written, flushed and
// applied LSN, time, reply requested).
//
// Written here rather than taken from pg-logical-replication's service (whose pgoutput decoder the relay does use):
// that service attaches its connection's 'error' listener only once the connection is made, so a server that ends
// the connection in the same read as its "ready" answer (PostgreSQL shutting down just as the relay reconnects) left
// an 'error' with no listener, and the relay process crashed; and a stop() that came while it was connecting could
// leave a connection streaming that nobody would close, holding the slot.
import { Client, type ClientConfig } from 'pg';

/** PostgreSQL's epoch (2000-01-01) in Unix milliseconds: the protocol's times count microseconds from it. */
const POSTGRES_EPOCH_MS = 946_684_800_000;

const XLOG_DATA = 0x77; // 'w'
const PRIMARY_KEEPALIVE = 0x6b; // 'k'
/** The header of an XLogData message: its tag, start LSN, end LSN and send time. */
const XLOG_DATA_HEADER = 25;

export interface ReplicationHandlers {
  /** One XLogData payload (the output plugin's message), in log order; the next waits until this one settles. */
  data(payload: Buffer): Promise<void>;
  /** A primary keepalive: how far the server has sent the log, and whether it asks for an answer at once. */
  keepalive(lsn: bigint, replyRequested: boolean): void;
}

/** The parts of pg's connection the protocol needs (pg exposes them, its type declarations do not). */
interface ProtocolConnection {
  stream: { pause(): void; resume(): void };
  on(event: 'copyData', listener: (message: { chunk: Buffer }) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
}

export class ReplicationStream {
  private readonly client: Client;
  private settled = false;
  private settle!: (error?: unknown) => void;
  private readonly ended: Promise<void>;
  private closed?: Promise<void>;
  private readonly queue: Buffer[] = [];
  /** The loop handing queued payloads over, while one runs. */
  private draining?: Promise<void>;
  /** XLogData messages received so far, handed over or still queued. */
  received = 0;

  /** Until close() or the first failure: after that nothing more is handed over or confirmed. */
  get open(): boolean {
    return !this.settled;
  }

  constructor(
    config: ClientConfig,
    private readonly handlers: ReplicationHandlers,
  ) {
    this.client = new Client({ ...config, replication: 'database' } as ClientConfig);
    // Attached before the connection is made, and never removed: the server may end the connection at any moment,
    // and an 'error' with no listener would crash the process.
    this.client.on('error', (error) => this.fail(error));
    this.ended = new Promise((resolve, reject) => {
      this.settle = (error) => (error === undefined ? resolve() : reject(error));
    });
  }

  /**
   * Streams `slot` from its confirmed position until close() (then resolves) or a failure (then rejects with it):
   * the connection lost or refused, the server ending the stream, a handler that threw. Call close() either way.
   */
  async run(slot: string, pluginOptions: Record<string, string>): Promise<void> {
    try {
      await this.client.connect();
    } catch (error) {
      this.fail(error);
    }
    // Closed while connecting: the connection is ending, replication must not start on it.
    if (!this.settled) {
      this.connection().on('copyData', ({ chunk }) => this.receive(chunk));
      const options = Object.entries(pluginOptions).map(([name, value]) => `${name} '${value.replace(/'/g, "''")}'`);
      // 0/0: from the slot's confirmed position (a later position would make the server skip what lies between).
      this.client.query(`START_REPLICATION SLOT "${slot.replace(/"/g, '""')}" LOGICAL 0/0 (${options.join(', ')})`).then(
        () => this.fail(new Error('the server ended the replication stream')),
        (error: unknown) => this.fail(error),
      );
    }
    return this.ended;
  }

  /** Tells the server everything before `lsn` is written, flushed and applied: the slot may move up to it. */
  sendStatus(lsn: bigint): void {
    if (this.settled) return;
    const message = Buffer.alloc(34);
    message.write('r', 0, 'latin1');
    message.writeBigUInt64BE(lsn, 1);
    message.writeBigUInt64BE(lsn, 9);
    message.writeBigUInt64BE(lsn, 17);
    message.writeBigInt64BE(BigInt(Date.now() - POSTGRES_EPOCH_MS) * 1000n, 25);
    message.writeUInt8(0, 33);
    this.connection().sendCopyFromChunk(message);
  }

  /** Ends the stream (run() resolves) and the connection; resolves once both are done and no handler runs. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (!this.settled) {
        this.settled = true;
        this.settle();
      }
      this.queue.length = 0;
      await this.client.end().catch(() => {});
      await this.draining;
    })();
    return this.closed;
  }

  private fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(error);
  }

  private connection(): ProtocolConnection {
    return (this.client as unknown as { connection: ProtocolConnection }).connection;
  }

  private receive(chunk: Buffer): void {
    if (this.settled) return;
    if (chunk[0] === XLOG_DATA) {
      this.received += 1;
      this.queue.push(chunk.subarray(XLOG_DATA_HEADER));
      this.draining ??= this.drain();
    } else if (chunk[0] === PRIMARY_KEEPALIVE) {
      this.handlers.keepalive(chunk.readBigUInt64BE(1), chunk[17] === 1);
    }
  }

  /** Hands the queued payloads over in order, the socket paused until the queue is empty. */
  private async drain(): Promise<void> {
    const socket = this.connection().stream;
    socket.pause();
    try {
      for (let payload = this.queue.shift(); payload && !this.settled; payload = this.queue.shift()) {
        try {
          await this.handlers.data(payload);
        } catch (error) {
          this.fail(error);
        }
      }
    } finally {
      this.draining = undefined;
      if (!this.settled) socket.resume();
    }
  }
}

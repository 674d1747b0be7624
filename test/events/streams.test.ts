// The message stream on a real NATS server with JetStream (the binary scripts/install-nats.sh installs): the
// streams are declared once and created idempotently, a republished event id is dropped by the broker inside
// its window, and events survive a restart of the server on its store.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import { SERVICES } from '../../src/config';
import { connectNats } from '../../src/events/nats-connection';
import { DEAD_LETTER_STREAM, DUPLICATE_WINDOW_MS, ensureStreams, streamOf, subjectOf } from '../../src/events/streams';
import { freePort } from '../../src/local-stack/free-port';
import { startNatsServer, type RunningNatsServer } from '../../src/local-stack/nats';

describe('event streams (NATS JetStream)', function () {
  this.timeout(60_000);
  let storeDir: string;
  let port: number;
  let server: RunningNatsServer;
  let nc: NatsConnection;

  before(async function () {
    storeDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-nats-'));
    port = await freePort();
    server = await startNatsServer({ port, storeDir });
    nc = await connectNats([server.url], 'streams-test');
  });

  after(async function () {
    await nc?.close();
    await server?.stop();
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  });

  const names = async () => {
    const jsm = await jetstreamManager(nc);
    const found: string[] = [];
    for await (const name of jsm.streams.names()) found.push(name);
    return found.sort();
  };

  it('creates one stream per service and the dead letters, and creating them again changes nothing', async function () {
    await ensureStreams(nc, { replicas: 1 });
    const expected = [...SERVICES.map(streamOf), DEAD_LETTER_STREAM].sort();
    assert.deepEqual(await names(), expected);
    const jsm = await jetstreamManager(nc);
    const before = await jsm.streams.info(streamOf('inventory'));
    await Promise.all([ensureStreams(nc, { replicas: 1 }), ensureStreams(nc, { replicas: 1 })]);
    assert.deepEqual(await names(), expected);
    const after = await jsm.streams.info(streamOf('inventory'));
    assert.equal(after.created, before.created, 'the stream was not recreated');
    assert.deepEqual(after.config.subjects, ['inventory.events.>']);
    assert.equal(after.config.duplicate_window, nanos(DUPLICATE_WINDOW_MS));
  });

  it('brings a stream whose configuration drifted back to its declaration', async function () {
    const jsm = await jetstreamManager(nc);
    const drifted = (await jsm.streams.info(streamOf('payments'))).config;
    await jsm.streams.update(streamOf('payments'), { ...drifted, duplicate_window: nanos(5_000) });
    await ensureStreams(nc, { replicas: 1 });
    assert.equal((await jsm.streams.info(streamOf('payments'))).config.duplicate_window, nanos(DUPLICATE_WINDOW_MS));
  });

  it('drops an event republished with the same id (Nats-Msg-Id) inside the window', async function () {
    const js = jetstream(nc);
    const subject = subjectOf('inventory', 'StockReserved');
    const first = await js.publish(subject, JSON.stringify({ orderId: 'ord_1' }), { msgID: 'evt-1' });
    const again = await js.publish(subject, JSON.stringify({ orderId: 'ord_1' }), { msgID: 'evt-1' });
    assert.equal(first.duplicate, false);
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, first.seq, 'the duplicate names the stored message');
    const other = await js.publish(subject, JSON.stringify({ orderId: 'ord_2' }), { msgID: 'evt-2' });
    assert.equal(other.seq, first.seq + 1);
  });

  it('keeps the events across a server restart on its store', async function () {
    const jsm = await jetstreamManager(nc);
    const stored = (await jsm.streams.info(streamOf('inventory'))).state.messages;
    assert.ok(stored > 0);
    await nc.close();
    await server.kill();
    server = await startNatsServer({ port, storeDir });
    nc = await connectNats([server.url], 'streams-test');
    const after = await jetstreamManager(nc);
    assert.equal((await after.streams.info(streamOf('inventory'))).state.messages, stored);
    const message = await after.streams.getMessage(streamOf('inventory'), { seq: 1 });
    assert.deepEqual(message?.json(), { orderId: 'ord_1' });
  });
});

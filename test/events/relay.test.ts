// The polling relay against real PostgreSQL and a real NATS JetStream server: the outbox reaches the service's
// stream in write order, each row marked only once published; a row republished after a crash between the
// publish and the mark is dropped by the broker as a duplicate; only one relay per database is active.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { Client } from 'pg';
import { createInventoryActivities } from '../../src/activities/inventory/activities';
import { connectInventoryDb, type InventoryDb } from '../../src/activities/inventory/db';
import { connectNats } from '../../src/events/nats-connection';
import { PollingRelay, type EventEnvelope } from '../../src/events/relay';
import { ensureStreams, streamOf } from '../../src/events/streams';
import { freePort } from '../../src/local-stack/free-port';
import { startNatsServer, type RunningNatsServer } from '../../src/local-stack/nats';
import { createServiceDatabases } from '../support/postgres';

describe('outbox relay, polling mode (PostgreSQL → NATS JetStream)', function () {
  let storeDir: string;
  let server: RunningNatsServer;
  let nc: NatsConnection;
  let url: string;
  let db: InventoryDb;
  const relays: PollingRelay[] = [];

  before(async function () {
    storeDir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-relay-'));
    server = await startNatsServer({ port: await freePort(), storeDir });
    nc = await connectNats([server.url], 'relay-test');
    await ensureStreams(nc, { replicas: 1 });
    url = (await createServiceDatabases('relay')).inventory;
    db = connectInventoryDb(url);
    // The seed's ProductCatalogued events are not what these tests are about: as if published long ago.
    await db.$executeRaw`UPDATE outbox SET published_at = now()`;
  });

  after(async function () {
    for (const relay of relays) await relay.close();
    await db?.$disconnect();
    await nc?.close();
    await server?.stop();
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  });

  const relay = () => {
    const created = new PollingRelay({ service: 'inventory', databaseUrl: url, nats: nc, batchSize: 3 });
    relays.push(created);
    return created;
  };

  /** Every message on the inventory stream, in stream order. */
  async function streamed(): Promise<EventEnvelope[]> {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(streamOf('inventory'));
    const messages: EventEnvelope[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const message = await jsm.streams.getMessage(streamOf('inventory'), { seq });
      if (message) messages.push(message.json<EventEnvelope>());
    }
    return messages;
  }

  /** The stream without the products' stock-level events. */
  async function orderEvents(): Promise<EventEnvelope[]> {
    return (await streamed()).filter((event) => event.aggregateType !== 'Product');
  }

  async function unpublished(): Promise<number> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return Number((await client.query('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL')).rows[0].n);
    } finally {
      await client.end();
    }
  }

  it('publishes the outbox in write order, in batches, and marks each row once JetStream has it', async function () {
    const inventory = createInventoryActivities(db);
    for (const orderId of ['ord_relay_1', 'ord_relay_2']) await inventory.reserveStock({ orderId, lines: [{ sku: 'CB-005', quantity: 1 }] });
    await inventory.releaseStock({ orderId: 'ord_relay_1' });
    await inventory.consumeReservation({ orderId: 'ord_relay_2' });
    await inventory.releaseStock({ orderId: 'ord_relay_3' }); // a tombstone

    // Each reservation and release also records the products' new stock levels (StockLevelChanged): 8 rows.
    const active = relay();
    assert.equal(await active.tryLead(), true);
    assert.equal(await active.publishBatch(), 3, 'one batch of three');
    assert.equal(await unpublished(), 5);
    assert.equal(await active.publishBatch(), 3);
    assert.equal(await active.publishBatch(), 2);
    assert.equal(await active.publishBatch(), 0, 'nothing left');

    const all = await streamed();
    assert.deepEqual(
      all.filter((event) => event.aggregateType === 'Product').map((event) => `${event.aggregateId}:${event.sequence}:${event.type}:${event.payload.onHand}`),
      ['CB-005:2:StockLevelChanged:499', 'CB-005:3:StockLevelChanged:498', 'CB-005:4:StockLevelChanged:499'],
    );
    const events = all.filter((event) => event.aggregateType !== 'Product');
    assert.deepEqual(
      events.map((event) => `${event.aggregateId}:${event.sequence}:${event.type}`),
      ['ord_relay_1:1:StockReserved', 'ord_relay_2:1:StockReserved', 'ord_relay_1:2:StockReleased', 'ord_relay_2:2:ReservationConsumed', 'ord_relay_3:1:StockReleased'],
    );
    assert.equal(events[0].service, 'inventory');
    assert.equal(events[0].correlationId, 'ord_relay_1');
    assert.deepEqual(events[0].payload, { orderId: 'ord_relay_1', lines: [{ sku: 'CB-005', quantity: 1 }] });
    const jsm = await jetstreamManager(nc);
    const first = await jsm.streams.getMessage(streamOf('inventory'), { seq: 1 });
    assert.equal(first?.header.get('Nats-Msg-Id'), events[0].id, 'the event id is the message id');
    assert.equal(first?.subject, 'inventory.events.StockReserved');
  });

  it('republishes rows whose mark was lost, and the broker drops them as duplicates', async function () {
    const before = await streamed();
    // A crash after the publish and before the mark's commit: the published rows are unpublished again.
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query('UPDATE outbox SET published_at = NULL WHERE id = ANY($1::uuid[])', [before.map((event) => event.id)]);
    await client.end();
    const active = relays[0];
    while ((await active.publishBatch()) > 0);
    assert.equal(await unpublished(), 0);
    assert.deepEqual(await streamed(), before, 'the stream holds each event once');
  });

  it('lets one relay per database be active; a standby takes over when the active one goes', async function () {
    const standby = relay();
    assert.equal(await standby.tryLead(), false, 'the first relay holds the lock');
    await assert.rejects(standby.publishBatch(), /not the active one/);
    await relays[0].close();
    assert.equal(await standby.tryLead(), true, 'the lock went with the first relay connection');
    await createInventoryActivities(db).reserveStock({ orderId: 'ord_relay_4', lines: [{ sku: 'CB-005', quantity: 1 }] });
    assert.equal(await standby.publishBatch(), 2, 'the reservation and the stock level it changed');
    assert.equal((await orderEvents()).at(-1)?.aggregateId, 'ord_relay_4');
  });

  it('runs on when the server ends its connection (a restart, an outage), and publishes what comes next', async function () {
    for (const previous of relays) await previous.close();
    const running = relay();
    const loop = running.run({ idleMs: 50, retryMs: 200 });
    const admin = new Client({ connectionString: url });
    await admin.connect();
    try {
      const waitFor = async (check: () => Promise<boolean>, what: string) => {
        const deadline = Date.now() + 15_000;
        while (!(await check())) {
          if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };
      // This database's relay only: the suites running beside this one have relays of their own on the cluster.
      const relayBackends = async () =>
        Number((await admin.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'outbox-relay-inventory' AND datname = current_database()`)).rows[0].n);
      await waitFor(async () => (await relayBackends()) === 1, 'the relay to connect');
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'outbox-relay-inventory' AND datname = current_database()`);
      await createInventoryActivities(db).reserveStock({ orderId: 'ord_relay_5', lines: [{ sku: 'CB-005', quantity: 1 }] });
      await waitFor(async () => (await orderEvents()).at(-1)?.aggregateId === 'ord_relay_5', 'the event written after the disconnection');
      assert.equal(await unpublished(), 0);
    } finally {
      running.stop();
      await loop;
      await running.close();
      await admin.end();
    }
  });

  it('keeps rows unpublished while NATS is down, and publishes them once it is back', async function () {
    const active = relay();
    assert.equal(await active.tryLead(), true);
    await createInventoryActivities(db).releaseStock({ orderId: 'ord_relay_4' });
    await server.stop();
    await assert.rejects(active.publishBatch());
    assert.equal(await unpublished(), 2, 'the rows stay for the next try');
    server = await startNatsServer({ port: server.port, storeDir });
    const deadline = Date.now() + 20_000;
    let published = 0;
    while (published === 0 && Date.now() < deadline) {
      published = await active.publishBatch().catch(() => 0);
      if (published === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.equal(published, 2);
    assert.equal((await orderEvents()).at(-1)?.type, 'StockReleased');
  });
});

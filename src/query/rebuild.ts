// Rebuilds the views from the streams, from their first event: what `npm run read-model:rebuild` runs after a
// projection changed or a view was damaged. Everything happens in one transaction holding the views' lock
// exclusively, so readers see the old views until the new ones are complete, and the live projector waits
// (its transactions take the lock shared) and then goes on from where it was: the events it applies next were
// either part of the rebuild (the inbox says so, they change nothing) or came after it.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { recordInInbox, type ConsumedEvent } from '../events/consumer';
import type { EventEnvelope } from '../events/relay';
import type { QueryDb } from './db';
import { project } from './projections';
import { PROJECTOR_CONSUMERS, VIEWS_LOCK_KEY } from './projector';

export interface RebuildReport {
  /** Events read per stream. */
  events: Record<string, number>;
  /** Events that could not be applied (recorded in the inbox with their reason, as the live projector does). */
  deadLettered: { stream: string; streamSequence: number; reason: string }[];
}

const REBUILD_TIMEOUT_MS = 30 * 60_000;

export async function rebuildViews(db: QueryDb, nats: NatsConnection, log: (line: string) => void = () => {}): Promise<RebuildReport> {
  const jsm = await jetstreamManager(nats);
  const js = jetstream(nats);
  const report: RebuildReport = { events: {}, deadLettered: [] };
  await db.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${VIEWS_LOCK_KEY}::bigint)`;
      await tx.$executeRaw`TRUNCATE order_view, product_view, customer_view`;
      await tx.$executeRaw`DELETE FROM inbox WHERE consumer = ANY(${PROJECTOR_CONSUMERS.map(({ name }) => name)})`;
      for (const { stream, name } of PROJECTOR_CONSUMERS) {
        // Up to the stream's last event now: anything later is the live projector's.
        const { state } = await jsm.streams.info(stream);
        report.events[stream] = 0;
        if (state.messages === 0) continue;
        const messages = await (await js.consumers.get(stream)).consume();
        for await (const message of messages) {
          report.events[stream]++;
          const last = message.info.streamSequence >= state.last_seq;
          let envelope: EventEnvelope;
          try {
            envelope = message.json<EventEnvelope>();
          } catch (error) {
            report.deadLettered.push({ stream, streamSequence: message.info.streamSequence, reason: `unparseable: ${String(error)}` });
            if (last) break;
            continue;
          }
          const event: ConsumedEvent = { envelope, stream, streamSequence: message.info.streamSequence, deliveries: 1 };
          await tx.$executeRawUnsafe('SAVEPOINT rebuild_event');
          try {
            if (await recordInInbox(tx, name, event, null)) await project(tx, envelope);
            await tx.$executeRawUnsafe('RELEASE SAVEPOINT rebuild_event');
          } catch (error) {
            await tx.$executeRawUnsafe('ROLLBACK TO SAVEPOINT rebuild_event');
            const reason = error instanceof Error ? error.message : String(error);
            await recordInInbox(tx, name, event, reason);
            report.deadLettered.push({ stream, streamSequence: event.streamSequence, reason });
          }
          if (last) break;
        }
        await messages.close();
        log(`rebuild: ${stream}: ${report.events[stream]} events`);
      }
    },
    { timeout: REBUILD_TIMEOUT_MS, maxWait: 60_000 },
  );
  return report;
}

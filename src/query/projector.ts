// The projector: keeps the query database's views up to date from every service's stream. One durable
// consumer per stream (`query-<service>`), each applying its events in order, once (inbox), in the same
// transaction as the view change. A rebuild (src/query/rebuild.ts) holds the views' lock exclusively; each
// projection takes it shared, so the two never interleave.
import type { NatsConnection } from '@nats-io/nats-core';
import { SERVICES, type ServiceName } from '../config';
import { applyOnce, DurableConsumer, recordInInbox, runConsumers, type ConsumedEvent, type InboxDb, type RunningConsumers } from '../events/consumer';
import { connectConsumerPool, type SqlPool } from '../events/sql-pool';
import { streamOf } from '../events/streams';
import type { Logger } from '../observability/logging';
import { project, type ProjectionTx } from './projections';

/** The advisory lock that a rebuild holds exclusively and every projection shared. */
export const VIEWS_LOCK_KEY = 7_310_002;

/** The durable consumer that feeds the views from a service's stream. */
export const projectorConsumerName = (service: ServiceName) => `query-${service}`;

export const PROJECTOR_CONSUMERS = SERVICES.map((service) => ({ service, stream: streamOf(service), name: projectorConsumerName(service) }));

/**
 * The query database as the projector writes it: a pg pool (src/events/sql-pool.ts), where every event is a
 * transaction of a few statements; a Prisma client of the query database works too.
 */
export type ProjectorDb = InboxDb<ProjectionTx>;

/** The projector's pool: a connection per stream's consumer. */
export function connectProjectorDb(url: string, logger?: Logger): SqlPool {
  return connectConsumerPool(url, PROJECTOR_CONSUMERS.length, 'query', logger);
}

/** Applies one event to the views, once. */
export async function applyToViews(db: ProjectorDb, consumer: string, event: ConsumedEvent): Promise<boolean> {
  return applyOnce(db, consumer, event, async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(${VIEWS_LOCK_KEY}::bigint)`;
    await project(tx, event.envelope);
  });
}

export type RunningProjector = RunningConsumers;

export function startProjector(options: { nats: NatsConnection; db: ProjectorDb; maxDeliveries?: number; logger?: Logger }): RunningProjector {
  const { nats, db } = options;
  const consumers = PROJECTOR_CONSUMERS.map(
    ({ stream, name }) =>
      new DurableConsumer({
        nats,
        name,
        stream,
        maxDeliveries: options.maxDeliveries,
        logger: options.logger,
        handle: async (event) => {
          await applyToViews(db, name, event);
        },
        recordDeadLetter: async (event, reason) => {
          await db.$transaction((tx) => recordInInbox(tx, name, event, reason));
        },
      }),
  );
  return runConsumers(consumers);
}

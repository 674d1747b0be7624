// A query database for tests that run the API without the event pipeline (no NATS, no relay): created,
// migrated, and brought up to date by applying the service databases' outbox events through the projector's
// own code, as the relay and the projector would have.
import { Client } from 'pg';
import { SERVICES, type DatabaseUrls } from '../../src/config';
import { toEnvelope, type OutboxRow } from '../../src/events/relay';
import { streamOf } from '../../src/events/streams';
import { applyToViews, connectProjectorDb, projectorConsumerName } from '../../src/query/projector';
import { createQueryDatabase } from './postgres';

export async function createProjectedQueryDatabase(prefix: string, urls: DatabaseUrls): Promise<string> {
  const queryUrl = await createQueryDatabase(prefix);
  const db = connectProjectorDb(queryUrl);
  try {
    for (const service of SERVICES) {
      const client = new Client({ connectionString: urls[service] });
      await client.connect();
      try {
        const { rows } = await client.query<OutboxRow & { position: string }>(
          'SELECT id, aggregate_type, aggregate_id, sequence, type, payload, correlation_id, occurred_at, position FROM outbox ORDER BY position',
        );
        for (const row of rows) {
          const envelope = toEnvelope(service, row);
          await applyToViews(db, projectorConsumerName(service), { envelope, stream: streamOf(service), streamSequence: Number(row.position), deliveries: 1 });
        }
      } finally {
        await client.end();
      }
    }
  } finally {
    await db.end();
  }
  return queryUrl;
}

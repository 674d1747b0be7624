// One statement on a connection of its own, for tests that look into a database directly (a count, a row, a
// deletion standing for lost data). A connection per statement: the cluster may have restarted since the last one.
import { Client, type QueryResultRow } from 'pg';

export async function sql<T extends QueryResultRow = QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  // A connection the server ends (a restart, a terminated backend) fails the statement, not the test process.
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

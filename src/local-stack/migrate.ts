// Applies each service's checked-in Prisma migrations (prisma/<service>/migrations) with
// `prisma migrate deploy`, the same command a production deployment runs.
//
// The CLI costs a second or two of CPU even when there is nothing to apply, and every start (and every test
// stack) migrates five databases: a database whose `_prisma_migrations` already records every checked-in
// migration, unchanged (same checksum) and finished, is left alone without starting it. Anything else (a
// pending, failed or edited migration, one the folder does not have, no table yet, no connection) goes to the CLI,
// which applies or reports it as before.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { SERVICES, type DatabaseUrls, type ServiceName } from '../config';
import { PROJECT_ROOT } from './tools';

const run = promisify(execFile);
const PRISMA_CLI = path.join(PROJECT_ROOT, 'node_modules', 'prisma', 'build', 'index.js');

/** Migrates a service's database, or (`query`) the query database. */
export async function migrateService(service: ServiceName | 'query', url: string): Promise<void> {
  if (await isUpToDate(service, url)) return;
  const config = path.join(PROJECT_ROOT, 'prisma', service, 'prisma.config.ts');
  try {
    await run(process.execPath, [PRISMA_CLI, 'migrate', 'deploy', '--config', config], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, [`${service.toUpperCase()}_DATABASE_URL`]: url, PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      timeout: 120_000,
    });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`prisma migrate deploy failed for ${service}:\n${stdout}${stderr}`);
  }
}

export async function migrateAll(urls: DatabaseUrls): Promise<void> {
  await Promise.all(SERVICES.map((service) => migrateService(service, urls[service])));
}

/** The checked-in migrations of a service, with the checksum Prisma records for each (sha256 of its migration.sql). */
function checkedInMigrations(service: ServiceName | 'query'): Map<string, string> {
  const folder = path.join(PROJECT_ROOT, 'prisma', service, 'migrations');
  const migrations = new Map<string, string>();
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const sql = readFileSync(path.join(folder, entry.name, 'migration.sql'));
    migrations.set(entry.name, createHash('sha256').update(sql).digest('hex'));
  }
  return migrations;
}

/** Whether `prisma migrate deploy` would find nothing to do: every migration applied, finished, unchanged, and no other. */
export async function isUpToDate(service: ServiceName | 'query', url: string): Promise<boolean> {
  const wanted = checkedInMigrations(service);
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ migration_name: string; checksum: string; finished: boolean; rolled_back: boolean }>(
      `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled_back
         FROM _prisma_migrations`,
    );
    const applied = rows.filter((row) => !row.rolled_back);
    if (new Set(applied.map((row) => row.migration_name)).size !== applied.length || applied.length !== wanted.size) return false;
    return applied.every((row) => row.finished && wanted.get(row.migration_name) === row.checksum);
  } catch {
    return false; // no table yet, no connection, ...: the CLI says what is wrong
  } finally {
    await client.end().catch(() => {});
  }
}

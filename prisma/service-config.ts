// Prisma CLI configuration shared by the four services and the query database (each has
// prisma/<name>/prisma.config.ts).
//
// Prisma 6.19 with `engine: "js"` runs migrate on its bundled wasm schema engine through a driver adapter,
// so the CLI works without downloading a native schema engine (see README, "Offline toolchain").
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, type QueryResult } from 'pg';
import { defineConfig } from 'prisma/config';

// PostgreSQL catalog types (name, "char", oidvector, regproc, ...) that the migration engine reads while
// inspecting a database but that adapter-pg refuses to decode (prisma/orm#27403). pg already returns their
// values as strings, so they are reported as text.
const CATALOG_TYPE_OIDS = new Set([18, 19, 22, 24, 28, 30, 194, 1002, 1003, 1033, 2205, 2206, 3361, 3402]);
const TEXT_OID = 25;

// The wasm schema engine arms 10 s and 60 s timers that keep an otherwise finished CLI process alive.
// No CLI run waits on a timer that long, so such timers do not hold the process open.
const armTimer = globalThis.setTimeout;
globalThis.setTimeout = ((handler: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const timer = armTimer(handler, ms, ...args);
  if ((ms ?? 0) >= 10_000) timer.unref();
  return timer;
}) as typeof setTimeout;

function reportCatalogTypesAsText(result: QueryResult): QueryResult {
  for (const field of result.fields ?? []) {
    if (CATALOG_TYPE_OIDS.has(field.dataTypeID)) field.dataTypeID = TEXT_OID;
  }
  return result;
}

function migrationPool(connectionString: string): Pool {
  // allowExitOnIdle: idle pooled connections would otherwise keep the finished CLI alive for 10 s.
  const pool = new Pool({ connectionString, allowExitOnIdle: true });
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<QueryResult>;
  pool.query = (async (...args: unknown[]) => reportCatalogTypesAsText(await query(...args))) as Pool['query'];
  return pool;
}

export function serviceConfig(service: 'orders' | 'inventory' | 'payments' | 'shipping' | 'query') {
  const urlVariable = `${service.toUpperCase()}_DATABASE_URL`;
  return defineConfig({
    experimental: { adapter: true },
    engine: 'js',
    schema: path.join(__dirname, service, 'schema.prisma'),
    migrations: { path: path.join(__dirname, service, 'migrations') },
    async adapter() {
      const connectionString = process.env[urlVariable];
      // Without this the CLI silently falls back to the native engine and fails on a download.
      if (!connectionString) throw new Error(`${urlVariable} is not set`);
      return new PrismaPg(migrationPool(connectionString), { disposeExternalPool: true });
    },
  });
}

// Applies each service's checked-in Prisma migrations (prisma/<service>/migrations) with
// `prisma migrate deploy`, the same command a production deployment runs.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { SERVICES, type DatabaseUrls, type ServiceName } from '../config';
import { PROJECT_ROOT } from './tools';

const run = promisify(execFile);
const PRISMA_CLI = path.join(PROJECT_ROOT, 'node_modules', 'prisma', 'build', 'index.js');

/** Migrates a service's database, or (`query`) the query database. */
export async function migrateService(service: ServiceName | 'query', url: string): Promise<void> {
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

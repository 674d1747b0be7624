import { PrismaClient } from '../../generated/prisma/query';
import { PoolAdapter } from '../activities/pool';

export type QueryDb = PrismaClient;

/** The query database: written only by the projector (src/query/projector.ts), read by the API. */
export function connectQueryDb(url: string, poolSize?: number): QueryDb {
  return new PrismaClient({ adapter: new PoolAdapter(url, poolSize) });
}

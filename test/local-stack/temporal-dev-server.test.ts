// The embedded Temporal dev server's SQLite file: written through a write-ahead log by default (`fast`, about
// twice the workflows per second here, see docs/performance.md), or with SQLite's own defaults (`full`). The
// mode shows on disk: a database in WAL mode keeps a `-wal` file beside it while the server runs.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/local-stack/free-port';
import { startTemporalDevServer, type DevServerDurability } from '../../src/local-stack/temporal-dev-server';

describe('the embedded Temporal dev server', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-devserver-'));
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [durability, wal] of [['fast', true], ['full', false]] as [DevServerDurability, boolean][]) {
    it(`writes its SQLite file ${wal ? 'through a write-ahead log' : 'with SQLite\'s defaults, no write-ahead log'} (${durability})`, async function () {
      const dbFile = path.join(dir, `${durability}.sqlite`);
      const server = await startTemporalDevServer({ port: await freePort(), dbFile, durability });
      try {
        assert.ok(existsSync(dbFile), 'the database file exists');
        assert.equal(existsSync(`${dbFile}-wal`), wal);
      } finally {
        await server.stop();
      }
    });
  }
});

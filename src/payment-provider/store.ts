// The sandbox provider's own durable store: an append-only JSON-lines log in its data folder, fsynced before
// any answer depends on it, and replayed into memory at start.
//
// - Each line is one batch of entity snapshots ({ kind, value }); replay applies them in order, last write
//   wins. A batch that changes several entities (a decision and the webhook it owes) is one line, so it is
//   all there after a crash or not at all.
// - A crash during an append can leave a torn last line: replay drops it (that mutation was never answered).
//   An unreadable line anywhere else is corruption and stops the start with the line number.
// - At each start the log is compacted: the current state is written to a new file, fsynced and renamed over
//   the old one, so the log does not grow across restarts without bound.
// - A lock file (holding the pid) keeps a second provider process from appending to the same log.
// - Mutations run one at a time (exclusive()), so a check-then-write is never interleaved with another.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { ProviderAuthorization } from '../activities/payments/provider';

/** An authorization as the provider keeps it: the public record plus when the sandbox "bank" will decide. */
export interface StoredAuthorization extends ProviderAuthorization {
  /** Epoch ms at which a PENDING authorization is confirmed automatically; absent when a person (a test) decides. */
  decideAt?: number;
}

/** A webhook the provider owes the merchant, kept until it is acknowledged (or refused for good). */
export interface WebhookEvent {
  id: string;
  providerRef: string;
  /** The exact JSON body sent and signed, so that every retry carries the same bytes. */
  body: string;
  state: 'PENDING' | 'DELIVERED' | 'FAILED';
  attempts: number;
  /** Epoch ms of the next delivery attempt while PENDING. */
  nextAttemptAt: number;
  lastError?: string;
  createdAt: string;
  deliveredAt?: string;
}

export type StoreEntry = { kind: 'authorization'; value: StoredAuthorization } | { kind: 'event'; value: WebhookEvent };

const LOG_FILE = 'provider.jsonl';
const LOCK_FILE = 'provider.lock';

/** Data folders opened by this process, so two stores in one process cannot share a folder either. */
const openInThisProcess = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: any) {
    return error?.code === 'EPERM';
  }
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class ProviderStore {
  readonly authorizations = new Map<string, StoredAuthorization>();
  readonly events = new Map<string, WebhookEvent>();
  private tail: Promise<unknown> = Promise.resolve();
  private broken: Error | undefined;
  private closed = false;

  private constructor(
    readonly dir: string,
    private handle: FileHandle,
  ) {}

  /** Opens (creating if needed) the store in `dir`, replays its log and compacts it. */
  static async open(dir: string, log: (line: string) => void = () => {}): Promise<ProviderStore> {
    const absolute = path.resolve(dir);
    await mkdir(absolute, { recursive: true });
    await lock(absolute);
    try {
      const logPath = path.join(absolute, LOG_FILE);
      const entries = existsSync(logPath) ? replay(await readFile(logPath, 'utf8'), logPath, log) : [];
      const authorizations = new Map<string, StoredAuthorization>();
      const events = new Map<string, WebhookEvent>();
      for (const entry of entries) apply(entry, authorizations, events);

      // Compaction: the current state, in a new file that replaces the log only once it is on disk.
      const compactPath = `${logPath}.compact`;
      const snapshot: StoreEntry[] = [
        ...[...authorizations.values()].map((value) => ({ kind: 'authorization' as const, value })),
        ...[...events.values()].map((value) => ({ kind: 'event' as const, value })),
      ];
      const lines: string[] = [];
      for (let i = 0; i < snapshot.length; i += 200) lines.push(`${JSON.stringify({ entries: snapshot.slice(i, i + 200) })}\n`);
      const compact = await open(compactPath, 'w');
      try {
        await compact.writeFile(lines.join(''));
        await compact.sync();
      } finally {
        await compact.close();
      }
      await rename(compactPath, logPath);
      await fsyncDirectory(absolute);

      const store = new ProviderStore(absolute, await open(logPath, 'a'));
      for (const [key, value] of authorizations) store.authorizations.set(key, value);
      for (const [key, value] of events) store.events.set(key, value);
      return store;
    } catch (error) {
      await unlock(absolute);
      throw error;
    }
  }

  /** Runs `fn` alone: no other exclusive() section (no other mutation) runs until it has finished. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(() => fn());
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Appends the entries as one line, fsyncs, then applies them to memory. Call inside exclusive(). Readers of
   * the maps therefore only ever see state that is on disk.
   */
  async commit(entries: StoreEntry[]): Promise<void> {
    if (this.closed) throw new Error('the payment provider store is closed');
    if (this.broken) throw new Error(`the payment provider store failed earlier and needs a restart: ${this.broken.message}`);
    if (entries.length === 0) return;
    try {
      await this.handle.write(`${JSON.stringify({ entries })}\n`);
      await this.handle.datasync();
    } catch (error: any) {
      // A half-written line may be on disk: no further append may follow it. A restart drops it.
      this.broken = error instanceof Error ? error : new Error(String(error));
      throw new Error(`the payment provider could not write its log: ${error?.message ?? error}`);
    }
    for (const entry of entries) apply(entry, this.authorizations, this.events);
  }

  /** Waits for running mutations, then closes the log and releases the folder. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.exclusive(() => undefined);
    this.closed = true;
    await this.handle.close();
    await unlock(this.dir);
  }
}

function apply(entry: StoreEntry, authorizations: Map<string, StoredAuthorization>, events: Map<string, WebhookEvent>): void {
  if (entry.kind === 'authorization') authorizations.set(entry.value.providerRef, entry.value);
  else if (entry.kind === 'event') events.set(entry.value.id, entry.value);
}

function replay(text: string, logPath: string, log: (line: string) => void): StoreEntry[] {
  const lines = text.split('\n');
  const entries: StoreEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    let parsed: { entries?: StoreEntry[] };
    try {
      parsed = JSON.parse(line);
      if (!Array.isArray(parsed.entries)) throw new Error('no entries');
    } catch {
      const isTornTail = i === lines.length - 1; // no newline after it: the append never finished
      if (isTornTail) {
        log(`payment-provider: dropping an unfinished last line of ${logPath} (a crash during a write; that write was never acknowledged)`);
        continue;
      }
      throw new Error(`payment provider log ${logPath} is corrupt at line ${i + 1}; it cannot be replayed`);
    }
    entries.push(...parsed.entries);
  }
  return entries;
}

async function lock(dir: string): Promise<void> {
  const lockPath = path.join(dir, LOCK_FILE);
  if (openInThisProcess.has(dir)) throw new Error(`payment provider data folder ${dir} is already open in this process`);
  if (existsSync(lockPath)) {
    const pid = Number(readFileSync(lockPath, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new Error(`payment provider data folder ${dir} is in use by process ${pid} (${lockPath})`);
    }
    // Left behind by a process that died (kill -9): take it over.
  }
  await writeFile(lockPath, `${process.pid}\n`);
  openInThisProcess.add(dir);
}

async function unlock(dir: string): Promise<void> {
  openInThisProcess.delete(dir);
  await unlink(path.join(dir, LOCK_FILE)).catch(() => undefined);
}

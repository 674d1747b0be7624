// The Temporal CLI's dev server (`temporal server start-dev`): a full Temporal server with the Web UI and
// SQLite persistence, used when no TEMPORAL_ADDRESS is configured.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { temporalCliPath } from './tools';

export interface DevServerOptions {
  port: number;
  /** Web UI port; omit to run headless. */
  uiPort?: number;
  /** SQLite file that keeps workflows across restarts; omit for an in-memory server. */
  dbFile?: string;
  /**
   * How the SQLite file is written. `fast` (the default): write-ahead log and `synchronous=normal`, about twice
   * the workflows per second on a small machine; a crash of the server process loses nothing, a power cut or OS
   * crash may lose its last transactions. `full`: SQLite's own defaults (rollback journal, a sync per commit).
   */
  durability?: DevServerDurability;
  namespace?: string;
  log?: (line: string) => void;
  startTimeoutMs?: number;
}

export type DevServerDurability = 'fast' | 'full';

export interface RunningDevServer {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

/**
 * Starts the dev server. The CLI picks free ports for its internal services itself, and one may be a port this
 * process has chosen but not bound yet (ours, or another server's starting alongside): the CLI then exits with
 * "address already in use". Starting again picks other internal ports; a port that is really taken keeps failing.
 */
export async function startTemporalDevServer(options: DevServerOptions): Promise<RunningDevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof PortClash)) throw error;
      options.log?.(`temporal dev server: a port was already in use; starting again (attempt ${attempt + 1})`);
    }
  }
}

class PortClash extends Error {}

async function startOnce(options: DevServerOptions): Promise<RunningDevServer> {
  const namespace = options.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--namespace', namespace, '--log-level', 'warn'];
  for (const attribute of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${attribute.name}=Keyword`);
  // DescribeTaskQueue's backlog statistics, which the API's back-pressure reads (src/api/admission.ts), are
  // cached by the server for 5 s by default: too stale to stop admitting orders before the backlog is large.
  args.push('--dynamic-config-value', 'matching.TaskQueueInfoByBuildIdTTL="500ms"');
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) {
    mkdirSync(path.dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
    if ((options.durability ?? 'fast') === 'fast') args.push('--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal');
  }

  const child = spawn(temporalCliPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
    options.log?.(chunk.toString().trimEnd());
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Never leave the server behind when this process ends, however it ends.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };

  const address = `127.0.0.1:${options.port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) {
      const message = `temporal server start-dev exited with code ${child.exitCode}:\n${output}`;
      throw /address already in use/.test(output) ? new PortClash(message) : new Error(message);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
      } finally {
        await connection.close();
      }
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`temporal dev server did not become ready on ${address}: ${String(error)}\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  return { address, uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined, stop };
}

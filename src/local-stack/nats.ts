// A NATS server with JetStream, the message stream between the services, run as a child process when no
// NATS_URL is configured (`npm start`, the tests). Its streams are kept on disk in `storeDir`, so events
// survive a restart. A child broker would outlive a crashed parent, so it is killed on every exit path.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { natsServerPath } from './tools';

export interface NatsServerOptions {
  port: number;
  /** JetStream's storage folder (created if missing). */
  storeDir: string;
  /** The server's name, which JetStream records with its state; keep it across restarts of one store. */
  name?: string;
  log?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface RunningNatsServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Kills it without warning, as a crash would (for reliability tests). */
  kill(): Promise<void>;
}

export async function startNatsServer(options: NatsServerOptions): Promise<RunningNatsServer> {
  mkdirSync(options.storeDir, { recursive: true });
  const args = ['-a', '127.0.0.1', '-p', String(options.port), '-js', '-sd', options.storeDir, '-n', options.name ?? 'order-saga'];
  const child = spawn(natsServerPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));

  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`nats-server did not become ready on port ${options.port} within ${options.startTimeoutMs ?? 30_000} ms:\n${output}`)),
      options.startTimeoutMs ?? 30_000,
    );
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      output = (output + text).slice(-4000);
      options.log?.(text.trimEnd());
      if (/Server is ready/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });

  const signal = async (name: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(name);
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  try {
    await ready;
  } catch (error) {
    await signal('SIGKILL');
    throw error;
  }
  return { url: `nats://127.0.0.1:${options.port}`, port: options.port, stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL') };
}

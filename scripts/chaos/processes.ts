// Child processes the chaos run (and the worker-crash test) can kill and restart: the worker, the API, the relay, the
// projector and the payment provider, each a real Node process running the compiled entry point the image runs
// (scripts/compiled.ts). An exit nobody asked for is recorded: nothing restarts a crashed process here.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { PROJECT_ROOT } from '../../src/local-stack/tools';
import { compiledEntry, IMAGE_ENVIRONMENT } from '../compiled';

/**
 * Writes each line of a child's output to the log behind `prefix`. Per line, not per chunk: a chunk may hold several
 * lines or part of one, and a crash's stack trace arrives as one chunk of many lines, each of which the diagnostics
 * (summarizeLog) only recognise by its prefix.
 */
export function logLines(output: Readable, prefix: string, log: WriteStream, onLine: (line: string) => void = () => {}): void {
  createInterface({ input: output, crlfDelay: Infinity }).on('line', (line) => {
    log.write(`${prefix} ${line}\n`);
    onLine(line);
  });
}

export class ManagedProcess {
  private child?: ChildProcess;
  restarts = 0;
  /** Children this object is killing or stopping: their exit is expected. */
  private readonly stopping = new WeakSet<ChildProcess>();
  /** Exits nobody asked for (a crash), e.g. `relay exited (1) at 11:29:09.012`: a supervisor would hide them, the chaos run reports them. */
  readonly unexpectedExits: string[] = [];

  constructor(
    private readonly name: string,
    /** The source entry point, e.g. `src/worker/index.ts`: its compiled file runs. */
    private readonly entry: string,
    private readonly env: NodeJS.ProcessEnv,
    /** A line the process prints once it is ready. */
    private readonly readyLine: RegExp,
    private readonly log: WriteStream,
    /** Variables of this process's own environment the child must not inherit. */
    private readonly options: { dropEnv?: RegExp } = {},
  ) {}

  static logFile(file: string): WriteStream {
    return createWriteStream(file, { flags: 'a' });
  }

  async start(timeoutMs = 120_000): Promise<void> {
    const child = spawn(process.execPath, [compiledEntry(this.entry)], {
      cwd: PROJECT_ROOT,
      // The image's environment unless this process's own says otherwise.
      env: { ...IMAGE_ENVIRONMENT, ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !this.options.dropEnv?.test(name))), ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.once('exit', (code, signal) => {
      if (!this.stopping.has(child)) this.unexpectedExits.push(`${this.name} exited (${code ?? signal}) at ${new Date().toISOString().slice(11, 23)}`);
    });
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => process.removeListener('exit', killOnExit));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not become ready in ${timeoutMs} ms`)), timeoutMs);
      logLines(child.stdout!, `[${this.name}]`, this.log, (line) => {
        if (this.readyLine.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
      logLines(child.stderr!, `[${this.name}!]`, this.log);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code ?? signal}) before it was ready`));
      });
    });
  }

  /** Kills the process without warning (SIGKILL): no graceful shutdown, in-flight work is lost. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    this.stopping.add(child);
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    this.restarts++;
    await this.start();
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    this.stopping.add(child);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

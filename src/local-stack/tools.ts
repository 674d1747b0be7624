// Where the Temporal and NATS binaries are. Precedence: an explicit path in the environment, a binary already
// on PATH, then the copies scripts/install-temporal.sh and scripts/install-nats.sh put in .tools/.
import { existsSync } from 'node:fs';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const INSTALLED_BIN = path.join(PROJECT_ROOT, '.tools', 'temporal', 'bin');

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function mustExist(candidate: string | undefined, what: string, variable: string, script = 'install-temporal.sh'): string {
  if (candidate && existsSync(candidate)) return candidate;
  throw new Error(`${what} not found: run \`bash scripts/${script}\` (npm install does) or set ${variable}`);
}

/** The Temporal CLI, which runs `temporal server start-dev` (dev server with the Web UI). */
export function temporalCliPath(): string {
  return mustExist(
    process.env.TEMPORAL_CLI_PATH || onPath('temporal') || path.join(INSTALLED_BIN, 'temporal'),
    'Temporal CLI',
    'TEMPORAL_CLI_PATH',
  );
}

/** The time-skipping test server used by the workflow tests. */
export function temporalTestServerPath(): string {
  return mustExist(
    process.env.TEMPORAL_TEST_SERVER_PATH || path.join(INSTALLED_BIN, 'temporal-test-server'),
    'Temporal time-skipping test server',
    'TEMPORAL_TEST_SERVER_PATH',
  );
}

/** The NATS server, run with JetStream as the services' message stream when no NATS_URL is configured. */
export function natsServerPath(): string {
  return mustExist(
    process.env.NATS_SERVER_PATH || onPath('nats-server') || path.join(PROJECT_ROOT, '.tools', 'nats', 'bin', 'nats-server'),
    'NATS server',
    'NATS_SERVER_PATH (or NATS_URL)',
    'install-nats.sh',
  );
}

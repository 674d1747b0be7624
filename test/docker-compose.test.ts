// docker-compose.yml, as Docker Compose itself resolves it (`docker compose config`): the services are all
// there, wired to each other, and the application's containers get the variables src/config.ts reads.
// Needs only the docker client with its compose plugin, no Docker engine. Where there is none the suite is
// skipped, loudly (a warning before the tests and again after mocha's summary, with the command that enables
// it); under CI=true it fails instead, so that CI cannot skip it without anyone noticing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { compiledPath, IMAGE_ENVIRONMENT } from '../scripts/compiled';
import { SERVICES } from '../src/config';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition: string }>;
  ports?: { target: number; published?: string }[];
  profiles?: string[];
  healthcheck?: { test?: string[] };
  volumes?: { source?: string; target: string }[];
}

interface ComposeModel {
  services: Record<string, ComposeService>;
}


/** The worker of each service, and the saga's. */
const SERVICE_WORKERS = SERVICES.map((service) => `worker-${service}`);
const WORKERS = ['worker-saga', ...SERVICE_WORKERS];
/** The containers that run the application's code. */
const APP_CONTAINERS = ['provision', ...WORKERS, 'api'];

/**
 * Every variable src/config.ts reads that every application container must be given (the optional TEMPORAL_TLS*
 * and TEMPORAL_API_KEY are passed through empty). The databases are not among them: each container gets only
 * the ones it owns.
 */
const CONFIG_VARIABLES = [
  'NODE_ENV',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_UI_URL',
  'REGISTER_SEARCH_ATTRIBUTES',
  'PORT',
  'HOST',
  'PUBLIC_URL',
  'APPROVAL_THRESHOLD_CENTS',
  'APPROVAL_TIMEOUT',
  'PAYMENT_CONFIRMATION_TIMEOUT',
  'DISPATCH_DELAY',
  'PAYMENT_PROVIDER',
  'PAYMENT_WEBHOOK_SECRET',
  'PAYMENT_CALLBACK_URL',
  'SANDBOX_CONFIRM_DELAY_MS',
  'PAYMENT_PROVIDER_URL',
  'PAYMENT_PROVIDER_API_KEY',
  'PAYMENT_CHECK_INTERVAL',
  'DB_POOL_SIZE',
  'UNEXPECTED_ERROR_MAX_ATTEMPTS',
  'NATS_URL',
  'NATS_STREAM_REPLICAS',
  'API_KEYS',
];

const INSTALL_COMMAND = 'bash scripts/install-docker-compose.sh';

/** The command the image runs for an npm script `tsx src/<entry>.ts`: node on its compiled file (scripts/compiled.ts). */
function compiled(script: string): string[] {
  const entry = /^tsx (src\/\S+\.ts)$/.exec(script);
  assert.ok(entry, `${script} runs one entry point under src/`);
  assert.ok(existsSync(path.join(ROOT, entry[1])), `${entry[1]} exists`);
  return ['node', compiledPath(entry[1])];
}

/** `docker compose config` of the whole file; or why docker compose is not available. */
async function composeConfig(): Promise<{ model: ComposeModel; stderr: string } | { missing: string }> {
  // Interpolation from the file's defaults, not from whatever this shell happens to export.
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The plugin scripts/install-docker-compose.sh builds, where the docker client came without one.
  const projectPlugins = path.join(ROOT, '.tools', 'docker');
  if (!env.DOCKER_CONFIG && existsSync(path.join(projectPlugins, 'cli-plugins', 'docker-compose'))) env.DOCKER_CONFIG = projectPlugins;
  try {
    await run('docker', ['compose', 'version'], { env, timeout: 30_000 });
  } catch (error) {
    const { code, stderr } = error as { code?: unknown; stderr?: string };
    return {
      missing:
        code === 'ENOENT'
          ? 'there is no docker client on the PATH (only the client is needed, no Docker engine)'
          : `\`docker compose version\` failed: ${(stderr || String(error)).trim().split('\n')[0]}`,
    };
  }
  for (const variable of [...CONFIG_VARIABLES, 'WORKER_ROLES', 'COMPOSE_FILE', 'COMPOSE_PROFILES', 'COMPOSE_PROJECT_NAME']) {
    delete env[variable];
  }
  const { stdout, stderr } = await run(
    'docker',
    ['compose', '-f', 'docker-compose.yml', 'config', '--format', 'json'],
    { cwd: ROOT, env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
  return { model: JSON.parse(stdout) as ComposeModel, stderr };
}

describe('docker-compose.yml', function () {
  let model: ComposeModel;
  let stderr: string;

  before(async function () {
    const resolved = await composeConfig();
    if ('missing' in resolved) {
      const message =
        `docker compose is not available: ${resolved.missing}. Run \`${INSTALL_COMMAND}\` to build its plugin into ` +
        '.tools/docker (needs the docker client and Go; a few minutes, once)';
      if (process.env.CI === 'true') throw new Error(`${message}. Under CI=true this suite must run, not be skipped.`);
      const warning = `\n  WARNING: the ${this.test?.parent?.tests.length ?? ''} docker-compose.yml tests were SKIPPED. ${message}.\n`;
      console.warn(warning);
      // Again after mocha's summary, where "pending" alone would not say why.
      process.once('exit', () => console.warn(warning));
      this.skip();
    }
    ({ model, stderr } = resolved);
  });

  function service(name: string): ComposeService {
    const found = model.services[name];
    assert.ok(found, `service ${name} is missing (have ${Object.keys(model.services).join(', ')})`);
    return found;
  }

  it('is valid and resolves without warnings', function () {
    assert.equal(stderr.trim(), '');
  });

  it('has Temporal on its own PostgreSQL, the Web UI, the services database, provision, the workers and API', function () {
    for (const name of ['temporal-db', 'temporal', 'temporal-ui', 'services-db', 'provision', 'payment-provider', 'relay', 'projector', ...WORKERS, 'api']) {
      const { profiles } = service(name);
      assert.ok(!profiles || profiles.length === 0, `${name} must start with a plain \`docker compose up\``);
    }
    assert.match(service('temporal').image ?? '', /^temporalio\/auto-setup:\d+\.\d+\.\d+$/);
    assert.equal(service('temporal').environment?.DB, 'postgres12');
    assert.equal(service('temporal').environment?.POSTGRES_SEEDS, 'temporal-db');
    assert.match(service('temporal-ui').image ?? '', /^temporalio\/ui:\d+\.\d+\.\d+$/);
    assert.equal(service('temporal-ui').environment?.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.ok(service('temporal-ui').ports?.some((port) => port.target === 8080 && port.published === '8080'));
    assert.match(service('temporal-db').image ?? '', /^postgres:/);
    assert.match(service('services-db').image ?? '', /^postgres:/);
  });

  it('creates the four service databases when the services database is first initialised', function () {
    const init = service('services-db').volumes?.find((volume) => volume.target === '/docker-entrypoint-initdb.d');
    assert.ok(init?.source, 'an init script folder is mounted on /docker-entrypoint-initdb.d');
    assert.equal(path.relative(ROOT, init.source), path.join('docker', 'postgres-init'));
  });

  it('runs provision, the workers, relay, projector and API from the Dockerfile, each with its npm script', function () {
    // The long-running ones run their script's entry point itself (npm would not pass SIGTERM on), as the image
    // compiled it: `tsx src/api/index.ts` is `node dist/api/index.js`.
    const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const commands: Record<string, string[]> = {
      provision: ['npm', 'run', 'db:provision'],
      ...Object.fromEntries(WORKERS.map((name) => [name, compiled(scripts.worker)])),
      relay: compiled(scripts.relay),
      projector: compiled(scripts.projector),
      api: compiled(scripts.api),
    };
    for (const [name, command] of Object.entries(commands)) {
      assert.ok(service(name).build, `${name} is built from the Dockerfile`);
      assert.equal(service(name).image, service('api').image, `${name} shares the one application image`);
      assert.deepEqual(service(name).command, command, name);
    }
  });

  for (const name of APP_CONTAINERS) {
    it(`gives ${name} every shared variable of src/config.ts`, function () {
      const environment = service(name).environment ?? {};
      for (const variable of CONFIG_VARIABLES) {
        assert.ok(environment[variable], `${name} lacks ${variable}`);
      }
      assert.equal(environment.TEMPORAL_ADDRESS, 'temporal:7233');
    });
  }

  it('gives each container only the databases it owns, all on services-db', function () {
    const owned: Record<string, string[]> = {
      provision: [...SERVICES, 'query'],
      relay: [...SERVICES],
      projector: ['query'],
      'worker-saga': [],
      ...Object.fromEntries(SERVICES.map((s) => [`worker-${s}`, [s]])),
      api: ['query'],
      'payment-provider': [],
    };
    for (const [name, databases] of Object.entries(owned)) {
      const environment = service(name).environment ?? {};
      const given = Object.keys(environment).filter((variable) => variable.endsWith('_DATABASE_URL')).sort();
      assert.deepEqual(given, databases.map((db) => `${db.toUpperCase()}_DATABASE_URL`).sort(), `${name}'s databases`);
      for (const variable of given) {
        const url = new URL(environment[variable]!);
        assert.equal(url.hostname, 'services-db', variable);
        assert.equal(url.pathname, `/${variable.replace('_DATABASE_URL', '').toLowerCase()}`, variable);
      }
    }
  });

  it('runs one worker per service, polling its queue and serving its read API, which is where the API reads', function () {
    assert.equal(service('worker-saga').environment?.WORKER_ROLES, 'saga');
    const api = service('api').environment ?? {};
    for (const s of SERVICES) {
      const environment = service(`worker-${s}`).environment ?? {};
      assert.equal(environment.WORKER_ROLES, s);
      assert.equal(environment.SERVICE_API_HOST, '0.0.0.0', `worker-${s} serves its read API to the network`);
      assert.equal(new URL(api[`${s.toUpperCase()}_SERVICE_URL`]!).host, `worker-${s}:${environment.SERVICE_API_PORT}`, `the API reads ${s} from its worker`);
    }
  });

  it('runs a three-node NATS JetStream cluster, each node with its own store, and streams with three replicas', function () {
    const nodes = ['nats-1', 'nats-2', 'nats-3'];
    for (const name of nodes) {
      const node = service(name);
      assert.match(node.image ?? '', /^nats:\d+\.\d+\.\d+/, `${name} runs a pinned NATS server`);
      const command = node.command ?? [];
      const flag = (option: string) => command[command.indexOf(option) + 1];
      assert.ok(command.includes('--jetstream'), `${name} has JetStream on`);
      assert.equal(flag('--cluster_name'), 'order-saga');
      const routes = flag('--routes').split(',').map((route) => new URL(route).hostname).sort();
      assert.deepEqual(routes, nodes.filter((other) => other !== name), `${name} routes to the two other nodes`);
      const store = node.volumes?.find((volume) => volume.target === flag('--store_dir'));
      assert.ok(store?.source, `${name} keeps its JetStream store on a volume`);
      assert.ok(node.healthcheck?.test?.join(' ').includes('healthz'), `${name} is health-checked`);
      assert.equal(service('provision').depends_on?.[name]?.condition, 'service_healthy', `provision waits for ${name}`);
    }
    const stores = nodes.map((name) => service(name).volumes?.[0]?.source);
    assert.equal(new Set(stores).size, 3, 'each node has its own store');
    for (const name of APP_CONTAINERS) {
      const environment = service(name).environment ?? {};
      const servers = environment.NATS_URL!.split(',').map((server) => new URL(server).hostname).sort();
      assert.deepEqual(servers, nodes, `${name} knows every node`);
      assert.equal(environment.NATS_STREAM_REPLICAS, '3');
    }
  });

  it('runs the sandbox payment provider as its own service with its own volume, reached by the payments worker', function () {
    const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const provider = service('payment-provider');
    assert.ok(!provider.profiles || provider.profiles.length === 0, 'the provider starts with a plain `docker compose up`');
    assert.deepEqual(provider.command, compiled(scripts['payment-provider']));
    assert.equal(provider.environment?.PROVIDER_HOST, '0.0.0.0');
    const data = provider.volumes?.find((volume) => volume.target === provider.environment?.PROVIDER_DATA_DIR);
    assert.ok(data?.source, 'its store (PROVIDER_DATA_DIR) is on a volume, so a restart keeps it');
    assert.ok(provider.healthcheck?.test?.join(' ').includes('/v1/health'));
    const worker = service('worker-payments').environment ?? {};
    assert.equal(new URL(worker.PAYMENT_PROVIDER_URL!).host, `payment-provider:${provider.environment?.PROVIDER_PORT}`);
    assert.equal(service('worker-payments').depends_on?.['payment-provider']?.condition, 'service_healthy');
    for (const variable of ['PAYMENT_PROVIDER_API_KEY', 'PAYMENT_WEBHOOK_SECRET', 'PAYMENT_CALLBACK_URL']) {
      assert.equal(provider.environment?.[variable], worker[variable], `provider and worker agree on ${variable}`);
    }
  });

  it('has the API listen on all interfaces, publish 3000 and be reached by the payment callback', function () {
    const api = service('api');
    assert.equal(api.environment?.HOST, '0.0.0.0');
    assert.equal(api.environment?.PORT, '3000');
    assert.ok(api.ports?.some((port) => port.target === 3000 && port.published === '3000'));
    assert.equal(service('worker-payments').environment?.PAYMENT_CALLBACK_URL, 'http://api:3000/payments/callback');
    assert.ok(api.healthcheck?.test?.join(' ').includes('/health'), 'the API is health-checked on GET /health');
  });

  it('agrees between the workers and API on what they must share', function () {
    const api = service('api').environment ?? {};
    for (const name of WORKERS) {
      const worker = service(name).environment ?? {};
      for (const variable of ['TEMPORAL_NAMESPACE', 'PAYMENT_WEBHOOK_SECRET', 'API_KEYS']) assert.equal(worker[variable], api[variable], `${name}: ${variable}`);
    }
  });

  it('starts the workers and API only after provision has completed and Temporal is healthy', function () {
    for (const name of [...WORKERS, 'api']) {
      const dependsOn = service(name).depends_on ?? {};
      assert.equal(dependsOn.provision?.condition, 'service_completed_successfully', `${name} waits for provision`);
      assert.equal(dependsOn.temporal?.condition, 'service_healthy', `${name} waits for Temporal`);
    }
    assert.equal(service('provision').depends_on?.['services-db']?.condition, 'service_healthy');
  });
});

// The image itself (no Docker engine here to build it): what its stages run and what it sets for every process.
describe('Dockerfile', function () {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const stages = text.split(/^FROM /m).slice(1);
  const image = stages[stages.length - 1];

  it('compiles src/ in a build stage and runs the compiled API by default', function () {
    const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const build = stages.find((stage) => /^\S+ AS build$/m.test(stage));
    assert.ok(build, 'a stage named build');
    assert.match(build, /^RUN npm run build$/m);
    assert.match(scripts.build, /^tsc -b src && /, 'npm run build compiles src/ (src/tsconfig.json) into dist/');
    assert.match(image, /^COPY --from=build \/app\/dist \.\/dist$/m);
    assert.match(image, /^ENV WORKFLOW_BUNDLE=\/app\/dist\/workflow-bundle\.js$/m);
    assert.equal(/^CMD (.+)$/m.exec(image)?.[1], JSON.stringify(compiled(scripts.api)).replaceAll(',', ', '));
  });

  it('sets the environment the tests and the benchmark give the processes they run as the image does', function () {
    for (const [name, value] of Object.entries(IMAGE_ENVIRONMENT)) {
      assert.match(image, new RegExp(`^ENV ${name}=${value}$`, 'm'), `the image sets ${name}=${value} (scripts/compiled.ts)`);
    }
  });
});

// Configuration: every variable is validated in src/config.ts and a bad value stops the process at start with
// a message naming it (never printing a secret); production refuses default, empty or short secrets; the
// Temporal connection follows the SDK's environment conventions (TLS, API key); search-attribute registration
// is optional for a worker without operator rights.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Connection } from '@temporalio/client';
import { ConfigError, DEV_API_KEYS, DEV_PROVIDER_API_KEY, DEV_WEBHOOK_SECRET, loadConfig, MIN_SECRET_LENGTH, WORKER_ROLES } from '../src/config';
import { temporalConnectionOptions } from '../src/temporal-connection';
import { ensureSearchAttributes } from '../src/worker/search-attributes';

const ROOT = path.resolve(__dirname, '..');
const long = (label: string) => `${label}-${'x'.repeat(MIN_SECRET_LENGTH)}`;
const PRODUCTION: NodeJS.ProcessEnv = {
  NODE_ENV: 'production',
  API_KEYS: `client:web-shop=${long('client')},manager:maria=${long('manager')},operator:ops=${long('operator')}`,
  PAYMENT_WEBHOOK_SECRET: long('webhook'),
  PAYMENT_PROVIDER_API_KEY: long('provider'),
};

function refused(env: NodeJS.ProcessEnv, variable: RegExp | string, secretValue?: string): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(env)}, got ${String(caught)}`);
  assert.match(caught.message, typeof variable === 'string' ? new RegExp(variable) : variable);
  if (secretValue) assert.ok(!caught.message.includes(secretValue), `the message reveals the secret: ${caught.message}`);
  return caught;
}

describe('configuration (src/config.ts)', function () {
  it('runs on development defaults when nothing is set, and says so', function () {
    const config = loadConfig({});
    assert.equal(config.production, false);
    assert.equal(config.auth.usingDevDefaults, true);
    assert.deepEqual(
      config.auth.apiKeys.map(({ role, principal }) => `${role}:${principal}`),
      ['client:web-shop', 'manager:maria', 'operator:ops'],
    );
    assert.equal(config.payments.webhookSecret, DEV_WEBHOOK_SECRET);
    assert.equal(config.temporal.searchAttributes, 'auto');
    assert.deepEqual(config.workerRoles, WORKER_ROLES);
    assert.deepEqual(config.localStack, { postgresPort: 54329, temporalPort: 7233, temporalUiPort: 8233, providerPort: 3100, natsPort: 4222, temporalDurability: 'fast' });
    assert.deepEqual(config.events, { natsServers: undefined, streamReplicas: 1, relayMode: 'wal', outboxRetentionMs: 7 * 24 * 3_600_000 });
    assert.equal(config.queryDatabaseUrl, undefined);
    assert.equal(config.temporal.address, undefined);
  });

  it('reads API_KEYS as role:principal=key entries, a principal may have several keys (rotation)', function () {
    const config = loadConfig({ API_KEYS: 'client:web-shop=k1=with=equals, client:web-shop=k2 ,manager:maria@example.com=k3' });
    assert.equal(config.auth.usingDevDefaults, false);
    assert.deepEqual(config.auth.apiKeys, [
      { role: 'client', principal: 'web-shop', key: 'k1=with=equals' },
      { role: 'client', principal: 'web-shop', key: 'k2' },
      { role: 'manager', principal: 'maria@example.com', key: 'k3' },
    ]);
  });

  const bad: [string, NodeJS.ProcessEnv, RegExp | string][] = [
    ['a port that is not a number', { PORT: 'eighty' }, /^PORT/],
    ['a port out of range', { PORT: '70000' }, /^PORT/],
    ['a port with a sign', { PORT: '-1' }, /^PORT/],
    ['a public URL that is not one', { PUBLIC_URL: 'api.example.com' }, /^PUBLIC_URL/],
    ['a callback URL of another scheme', { PAYMENT_CALLBACK_URL: 'ftp://api/payments/callback' }, /^PAYMENT_CALLBACK_URL/],
    ['a Web UI URL that is not one', { TEMPORAL_UI_URL: 'localhost:8080' }, /^TEMPORAL_UI_URL/],
    ['a database URL of another kind', { ORDERS_DATABASE_URL: 'mysql://u:p@h/orders', INVENTORY_DATABASE_URL: 'postgresql://h/i', PAYMENTS_DATABASE_URL: 'postgresql://h/p', SHIPPING_DATABASE_URL: 'postgresql://h/s' }, /^ORDERS_DATABASE_URL/],
    ['a dev server durability it does not know', { TEMPORAL_DEV_DURABILITY: 'safe' }, /^TEMPORAL_DEV_DURABILITY/],
    ['a service read API URL that is not one', { ORDERS_SERVICE_URL: 'orders:3200' }, /^ORDERS_SERVICE_URL/],
    ['a service API port out of range', { SERVICE_API_PORT: '70000' }, /^SERVICE_API_PORT/],
    ['a duration that is not one', { APPROVAL_TIMEOUT: 'soon' }, /^APPROVAL_TIMEOUT/],
    ['a zero duration', { DISPATCH_DELAY: '0s' }, /^DISPATCH_DELAY/],
    ['a threshold in exponent notation', { APPROVAL_THRESHOLD_CENTS: '1e5' }, /^APPROVAL_THRESHOLD_CENTS/],
    ['a threshold above the largest order', { APPROVAL_THRESHOLD_CENTS: '99999999999' }, /^APPROVAL_THRESHOLD_CENTS/],
    ['an unknown payment provider', { PAYMENT_PROVIDER: 'paypal' }, /^PAYMENT_PROVIDER/],
    ['an unknown worker role', { WORKER_ROLES: 'saga,billing' }, /^WORKER_ROLES.*billing/],
    ['an unknown log level', { LOG_LEVEL: 'LOUD' }, /^LOG_LEVEL/],
    ['an unknown log format', { LOG_FORMAT: 'xml' }, /^LOG_FORMAT/],
    ['an embedded port that is not a number', { EMBEDDED_POSTGRES_PORT: 'five' }, /^EMBEDDED_POSTGRES_PORT/],
    ['a Temporal address without a port', { TEMPORAL_ADDRESS: 'temporal' }, /^TEMPORAL_ADDRESS/],
    ['a namespace with spaces', { TEMPORAL_NAMESPACE: 'my orders' }, /^TEMPORAL_NAMESPACE/],
    ['TEMPORAL_TLS that is not a boolean', { TEMPORAL_ADDRESS: 'h:7233', TEMPORAL_TLS: 'maybe' }, /^TEMPORAL_TLS/],
    ['a client certificate without its key', { TEMPORAL_ADDRESS: 'h:7233', TEMPORAL_TLS_CLIENT_CERT_PATH: '/c.pem' }, /TEMPORAL_TLS_CLIENT_KEY/],
    ['a certificate as both path and data', { TEMPORAL_ADDRESS: 'h:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/ca.pem', TEMPORAL_TLS_SERVER_CA_CERT_DATA: '-----BEGIN' }, /TEMPORAL_TLS_SERVER_CA_CERT_PATH/],
    ['TLS off with certificates', { TEMPORAL_ADDRESS: 'h:7233', TEMPORAL_TLS: 'false', TEMPORAL_TLS_SERVER_NAME: 'x' }, /^TEMPORAL_TLS=false/],
    ['a Temporal API key without an address', { TEMPORAL_API_KEY: 'abc' }, /TEMPORAL_ADDRESS/],
    ['a TOML profile', { TEMPORAL_CONFIG_FILE: '/etc/temporal.toml' }, /^TEMPORAL_CONFIG_FILE/],
    ['an unknown search-attribute mode', { REGISTER_SEARCH_ATTRIBUTES: 'sometimes' }, /^REGISTER_SEARCH_ATTRIBUTES/],
    ['the retired MANAGER_TOKEN', { MANAGER_TOKEN: 'old' }, /^MANAGER_TOKEN.*API_KEYS/],
    ['an API key entry without a key', { API_KEYS: 'client:web-shop' }, /^API_KEYS entry 1/],
    ['an API key entry without a principal', { API_KEYS: 'client=abc' }, /^API_KEYS entry 1/],
    ['an unknown role', { API_KEYS: 'client:a=k1,admin:bob=k2' }, /^API_KEYS entry 2.*role/],
    ['a principal with spaces', { API_KEYS: 'client:web shop=k1' }, /^API_KEYS entry 1.*principal/],
    ['one key for two principals', { API_KEYS: 'client:a=same,manager:b=same' }, /^API_KEYS entry 2.*twice/],
    ['a provider URL that is not one', { PAYMENT_PROVIDER_URL: 'provider:3100' }, /^PAYMENT_PROVIDER_URL/],
    ['a payment check interval that is not a duration', { PAYMENT_CHECK_INTERVAL: 'often' }, /^PAYMENT_CHECK_INTERVAL/],
    ['a pool of no connections', { DB_POOL_SIZE: '0' }, /^DB_POOL_SIZE/],
    ['an activity concurrency that is not a number', { ACTIVITY_CONCURRENCY: 'many' }, /^ACTIVITY_CONCURRENCY/],
    ['no attempt for unexpected errors', { UNEXPECTED_ERROR_MAX_ATTEMPTS: '0' }, /^UNEXPECTED_ERROR_MAX_ATTEMPTS/],
    ['a workflow cache of one saga', { WORKFLOW_CACHE_SIZE: '1' }, /^WORKFLOW_CACHE_SIZE/],
    ['a workflow cache that is not a number', { WORKFLOW_CACHE_SIZE: 'small' }, /^WORKFLOW_CACHE_SIZE/],
    ['a provider port out of range', { PROVIDER_PORT: '65536' }, /^PROVIDER_PORT/],
    ['a NATS URL of another scheme', { NATS_URL: 'http://nats:4222' }, /^NATS_URL entry 1/],
    ['a NATS cluster with a bad second server', { NATS_URL: 'nats://a:4222,b:4222' }, /^NATS_URL entry 2/],
    ['stream replicas beyond a cluster', { NATS_STREAM_REPLICAS: '7' }, /^NATS_STREAM_REPLICAS/],
    ['an unknown relay mode', { RELAY_MODE: 'cdc' }, /^RELAY_MODE/],
    ['a retention that is no duration', { OUTBOX_RETENTION: 'forever' }, /^OUTBOX_RETENTION/],
    ['a query database URL of another kind', { QUERY_DATABASE_URL: 'mysql://u:p@h/query' }, /^QUERY_DATABASE_URL/],
  ];

  it('reads NATS_URL as one server or a cluster', function () {
    const env = { NATS_URL: 'nats://nats-1:4222, nats://nats-2:4222,nats://nats-3:4222', NATS_STREAM_REPLICAS: '3', RELAY_MODE: 'wal', OUTBOX_RETENTION: '2 days' };
    assert.deepEqual(loadConfig(env).events, {
      natsServers: ['nats://nats-1:4222', 'nats://nats-2:4222', 'nats://nats-3:4222'],
      streamReplicas: 3,
      relayMode: 'wal',
      outboxRetentionMs: 2 * 24 * 3_600_000,
    });
  });

  it('sizes worker activity concurrency with the database pool unless told otherwise', function () {
    assert.deepEqual(loadConfig({ DB_POOL_SIZE: '7' }).workers, { poolSize: 7, activityConcurrency: 7, unexpectedErrorMaxAttempts: 5 });
    assert.equal(loadConfig({ DB_POOL_SIZE: '7', ACTIVITY_CONCURRENCY: '50' }).workers.activityConcurrency, 50);
  });

  it('leaves the workflow cache and bundle to the SDK unless given', function () {
    const given = loadConfig({ WORKFLOW_CACHE_SIZE: '64', WORKFLOW_BUNDLE: '/app/dist/workflow-bundle.js' }).workers;
    assert.equal(given.maxCachedWorkflows, 64);
    assert.equal(given.workflowBundlePath, '/app/dist/workflow-bundle.js');
    const unset = loadConfig({ WORKFLOW_CACHE_SIZE: '', WORKFLOW_BUNDLE: '' }).workers;
    assert.ok(!('maxCachedWorkflows' in unset) && !('workflowBundlePath' in unset), JSON.stringify(unset));
  });
  for (const [what, env, variable] of bad) {
    it(`refuses ${what}, naming the variable`, function () {
      refused(env, variable);
    });
  }

  it('never prints a key or a secret in its messages', function () {
    refused({ API_KEYS: 'admin:bob=super-secret-key-value' }, /^API_KEYS entry 1/, 'super-secret-key-value');
    refused({ ...PRODUCTION, PAYMENT_WEBHOOK_SECRET: 'short-secret' }, /^PAYMENT_WEBHOOK_SECRET/, 'short-secret');
    refused({ ...PRODUCTION, API_KEYS: 'client:a=too-short-key' }, /^API_KEYS entry 1/, 'too-short-key');
  });

  describe('in production (NODE_ENV=production)', function () {
    it('starts with long secrets of its own', function () {
      const config = loadConfig(PRODUCTION);
      assert.equal(config.production, true);
      assert.equal(config.auth.usingDevDefaults, false);
    });

    it('refuses missing API keys', function () {
      refused({ ...PRODUCTION, API_KEYS: undefined }, /^API_KEYS must be set in production/);
      refused({ ...PRODUCTION, API_KEYS: '' }, /^API_KEYS must be set in production/);
    });

    it('refuses a development key or a short key', function () {
      refused({ ...PRODUCTION, API_KEYS: DEV_API_KEYS }, /^API_KEYS entry 1.*development default/);
      refused({ ...PRODUCTION, API_KEYS: `${PRODUCTION.API_KEYS},operator:ops=${'y'.repeat(MIN_SECRET_LENGTH - 1)}` }, /^API_KEYS entry 4.*too short/);
    });

    it('refuses a missing, empty, default or short webhook secret', function () {
      refused({ ...PRODUCTION, PAYMENT_WEBHOOK_SECRET: undefined }, /^PAYMENT_WEBHOOK_SECRET must be set/);
      refused({ ...PRODUCTION, PAYMENT_WEBHOOK_SECRET: '' }, /^PAYMENT_WEBHOOK_SECRET must be set/);
      refused({ ...PRODUCTION, PAYMENT_WEBHOOK_SECRET: DEV_WEBHOOK_SECRET }, /^PAYMENT_WEBHOOK_SECRET is the development default/);
      refused({ ...PRODUCTION, PAYMENT_WEBHOOK_SECRET: 'x'.repeat(MIN_SECRET_LENGTH - 1) }, /^PAYMENT_WEBHOOK_SECRET is too short/);
    });

    it('refuses a missing, default or short payment provider API key', function () {
      refused({ ...PRODUCTION, PAYMENT_PROVIDER_API_KEY: undefined }, /^PAYMENT_PROVIDER_API_KEY must be set/);
      refused({ ...PRODUCTION, PAYMENT_PROVIDER_API_KEY: DEV_PROVIDER_API_KEY }, /^PAYMENT_PROVIDER_API_KEY is the development default/);
      refused({ ...PRODUCTION, PAYMENT_PROVIDER_API_KEY: 'p'.repeat(MIN_SECRET_LENGTH - 1) }, /^PAYMENT_PROVIDER_API_KEY is too short/);
    });

    it('refuses fault injection', function () {
      refused({ ...PRODUCTION, FAULT_INJECTION: '*:transient=0.1' }, /^FAULT_INJECTION/);
    });
  });

  describe('the processes', function () {
    this.timeout(60_000);

    /** Runs an entry point with only `env` (plus PATH) and returns its exit code and output. */
    function run(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
      return new Promise((resolve) => {
        const child = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), script], {
          cwd: ROOT,
          env: { PATH: process.env.PATH, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (chunk) => (output += chunk));
        child.stderr.on('data', (chunk) => (output += chunk));
        const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
        child.on('exit', (code) => {
          clearTimeout(timer);
          resolve({ code, output });
        });
      });
    }
    const databases = {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      ORDERS_DATABASE_URL: 'postgresql://u:p@127.0.0.1:1/orders',
      INVENTORY_DATABASE_URL: 'postgresql://u:p@127.0.0.1:1/inventory',
      PAYMENTS_DATABASE_URL: 'postgresql://u:p@127.0.0.1:1/payments',
      SHIPPING_DATABASE_URL: 'postgresql://u:p@127.0.0.1:1/shipping',
    };

    it('the API refuses to start in production with the default webhook secret, naming it', async function () {
      const { code, output } = await run('src/api/index.ts', { ...databases, ...PRODUCTION, PAYMENT_WEBHOOK_SECRET: DEV_WEBHOOK_SECRET });
      assert.equal(code, 2, output);
      assert.match(output, /configuration error: PAYMENT_WEBHOOK_SECRET is the development default/);
      assert.ok(!output.includes('listening'), output);
    });

    it('the worker refuses to start in production without API keys, naming API_KEYS', async function () {
      const { code, output } = await run('src/worker/index.ts', { ...databases, ...PRODUCTION, API_KEYS: '' });
      assert.equal(code, 2, output);
      assert.match(output, /configuration error: API_KEYS must be set in production/);
      assert.ok(!output.includes('polling'), output);
    });

    it('a saga worker told to load a workflow bundle that is not there refuses to start, naming WORKFLOW_BUNDLE', async function () {
      const { code, output } = await run('src/worker/index.ts', { ...databases, TEMPORAL_ADDRESS: '127.0.0.1:1', WORKER_ROLES: 'saga', WORKFLOW_BUNDLE: '/nonexistent/workflow-bundle.js' });
      assert.equal(code, 2, output);
      assert.match(output, /configuration error: WORKFLOW_BUNDLE: no file at \/nonexistent\/workflow-bundle\.js; build it with `npm run build:workflows`/);
      assert.ok(!output.includes('polling'), output);
    });

    it('a worker needs the database of each service it hosts, and only those', async function () {
      const { code, output } = await run('src/worker/index.ts', { TEMPORAL_ADDRESS: '127.0.0.1:1', ORDERS_DATABASE_URL: databases.ORDERS_DATABASE_URL, WORKER_ROLES: 'inventory,shipping' });
      assert.equal(code, 2, output);
      assert.match(output, /configuration error: a worker for inventory, shipping needs INVENTORY_DATABASE_URL, SHIPPING_DATABASE_URL/);
    });

    it('the API needs every service\'s read API URL and no service database', async function () {
      const { code, output } = await run('src/api/index.ts', { ...databases, QUERY_DATABASE_URL: 'postgresql://u:p@127.0.0.1:1/query', ORDERS_SERVICE_URL: 'http://127.0.0.1:1' });
      assert.equal(code, 2, output);
      assert.match(output, /configuration error: the API needs INVENTORY_SERVICE_URL, PAYMENTS_SERVICE_URL, SHIPPING_SERVICE_URL/);
    });

    it('`npm start` refuses some service database URLs without the others, naming the missing ones', async function () {
      const { code, output } = await run('scripts/start.ts', { ORDERS_DATABASE_URL: databases.ORDERS_DATABASE_URL });
      assert.equal(code, 2, output);
      assert.match(output, /configuration error: set all of the service database URLs or none: needs INVENTORY_DATABASE_URL, PAYMENTS_DATABASE_URL, SHIPPING_DATABASE_URL/);
      assert.ok(!output.includes('postgres:'), output);
    });

    it('`npm start` refuses a bad port before starting anything, naming it', async function () {
      const { code, output } = await run('scripts/start.ts', { TEMPORAL_DEV_PORT: 'seven' });
      assert.equal(code, 2, output);
      assert.match(output, /configuration error: TEMPORAL_DEV_PORT/);
      assert.ok(!output.includes('postgres:'), output);
    });
  });
});

describe('Temporal connection options (src/temporal-connection.ts)', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'order-saga-tls-'));
    writeFileSync(path.join(dir, 'client.pem'), '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n');
    writeFileSync(path.join(dir, 'client.key'), '-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n');
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects in plain text to a server given by address only', function () {
    const options = temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'orders' }).temporal);
    assert.equal(options.client.address, 'temporal:7233');
    assert.equal(options.worker.address, 'temporal:7233');
    assert.equal(options.namespace, 'orders');
    assert.equal(options.client.tls, undefined);
    assert.equal(options.client.apiKey, undefined);
  });

  it('turns TLS on with an API key (Temporal Cloud), for the client and the worker alike, unless TEMPORAL_TLS=false', function () {
    const cloud = temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'orders.a1b2c.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'orders.a1b2c', TEMPORAL_API_KEY: 'key-123' }).temporal);
    for (const side of [cloud.client, cloud.worker]) {
      assert.equal(side.apiKey, 'key-123');
      assert.equal(side.tls, true);
    }
    const plain = temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'h:7233', TEMPORAL_API_KEY: 'key-123', TEMPORAL_TLS: 'false' }).temporal);
    assert.equal(plain.client.tls, false);
    assert.equal(plain.worker.apiKey, 'key-123');
  });

  it('reads mTLS certificates from files or inline PEM, and sends TEMPORAL_GRPC_META_* headers', function () {
    const options = temporalConnectionOptions(
      loadConfig({
        TEMPORAL_ADDRESS: 'h:7233',
        TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'client.pem'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
        TEMPORAL_TLS_SERVER_CA_CERT_DATA: '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----',
        TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
        TEMPORAL_GRPC_META_X_TENANT: 'shop',
      }).temporal,
    );
    const tls = options.worker.tls as { serverNameOverride?: string; clientCertPair?: { crt: Buffer; key: Buffer }; serverRootCACertificate?: Buffer };
    assert.equal(tls.serverNameOverride, 'temporal.internal');
    assert.match(tls.clientCertPair!.crt.toString(), /client/);
    assert.match(tls.clientCertPair!.key.toString(), /PRIVATE KEY/);
    assert.match(tls.serverRootCACertificate!.toString(), /ca/);
    assert.deepEqual(options.client.tls, options.worker.tls);
    assert.deepEqual(options.client.metadata, { 'x-tenant': 'shop' });
  });

  it('stops at start on an unreadable certificate, naming its variable', function () {
    const temporal = loadConfig({
      TEMPORAL_ADDRESS: 'h:7233',
      TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'missing.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
    }).temporal;
    assert.throws(() => temporalConnectionOptions(temporal), (error: Error) => error instanceof ConfigError && /^TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read .*ENOENT/.test(error.message));
  });
});

describe('search-attribute registration (src/worker/search-attributes.ts)', function () {
  /** A gRPC error as the client raises it. */
  const grpcError = (code: number, details: string) => Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
  const PERMISSION_DENIED = 7;

  /** The operator service of a server: which attributes it has, and what it answers to listing and adding. */
  function server(behaviour: { list?: () => Promise<unknown>; add?: () => Promise<unknown> }) {
    const calls: string[] = [];
    const connection = {
      operatorService: {
        listSearchAttributes: async () => {
          calls.push('list');
          return (behaviour.list ?? (async () => ({ customAttributes: {} })))();
        },
        addSearchAttributes: async () => {
          calls.push('add');
          return (behaviour.add ?? (async () => ({})))();
        },
      },
    } as unknown as Connection;
    return { connection, calls };
  }

  it('registers what is missing', async function () {
    const { connection, calls } = server({ list: async () => ({ customAttributes: { OrderStatus: 2 } }) });
    const result = await ensureSearchAttributes(connection, 'default', { mode: 'auto' });
    assert.deepEqual(result, { registered: ['CustomerId'], unverified: [] });
    assert.deepEqual(calls, ['list', 'add']);
  });

  it('lets a worker without operator rights run (auto): a clear warning, no failure', async function () {
    const warnings: string[] = [];
    const denied = async () => {
      throw grpcError(PERMISSION_DENIED, 'Request unauthorized.');
    };
    for (const behaviour of [{ list: denied }, { add: denied }]) {
      const { connection } = server(behaviour);
      const result = await ensureSearchAttributes(connection, 'orders', { mode: 'auto', warn: (line) => warnings.push(line) });
      assert.deepEqual(result.registered, []);
      assert.deepEqual(result.unverified, ['OrderStatus', 'CustomerId']);
    }
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /WARNING: search attributes: could not list .* namespace orders .*Request unauthorized/);
    assert.match(warnings[1], /temporal operator search-attribute create --namespace orders --name OrderStatus --type Keyword/);
    assert.match(warnings[1], /REGISTER_SEARCH_ATTRIBUTES=off/);
  });

  it('fails when registration is required and not allowed', async function () {
    const { connection } = server({
      add: async () => {
        throw grpcError(PERMISSION_DENIED, 'Request unauthorized.');
      },
    });
    await assert.rejects(ensureSearchAttributes(connection, 'orders', { mode: 'required' }), /could not register OrderStatus, CustomerId/);
  });

  it('does not touch the server when off, and takes a concurrent registration as done', async function () {
    const off = server({});
    assert.deepEqual(await ensureSearchAttributes(off.connection, 'default', { mode: 'off' }), { registered: [], unverified: ['OrderStatus', 'CustomerId'] });
    assert.deepEqual(off.calls, []);
    const raced = server({
      add: async () => {
        throw grpcError(6, 'Search attribute OrderStatus already exists.');
      },
    });
    assert.deepEqual(await ensureSearchAttributes(raced.connection, 'default', { mode: 'required' }), { registered: [], unverified: [] });
  });

  it('still fails on an outage, whatever the mode (the worker retries its start)', async function () {
    const { connection } = server({
      list: async () => {
        throw grpcError(14, 'connection refused');
      },
    });
    await assert.rejects(ensureSearchAttributes(connection, 'default', { mode: 'auto', warn: () => {} }), /connection refused/);
  });
});

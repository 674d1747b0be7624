// Everything the system reads from its environment, in one place: every variable is read and validated here,
// and a bad value stops the process at start with a ConfigError naming the variable (never printing a secret).
// docker-compose.yml and the README use exactly these names.
//
// This module is also bundled into the workflow code (TASK_QUEUES), so it must not import Node modules: files
// named by variables (TLS certificates) are read by src/temporal-connection.ts.
import { msToNumber } from '@temporalio/common/lib/time';
import { MAX_ORDER_TOTAL_CENTS } from './domain';

export const SERVICES = ['orders', 'inventory', 'payments', 'shipping'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** The saga's own task queue, plus one per service so each can be scaled by its own workers. */
export const TASK_QUEUES = {
  saga: 'order-saga',
  orders: 'orders',
  inventory: 'inventory',
  payments: 'payments',
  shipping: 'shipping',
} as const;
export type WorkerRole = keyof typeof TASK_QUEUES;
export const WORKER_ROLES = Object.keys(TASK_QUEUES) as WorkerRole[];

export type DatabaseUrls = Record<ServiceName, string>;

export interface SagaPolicy {
  /** Orders whose total is above this many cents wait for a manager's approval. */
  approvalThresholdCents: number;
  /** How long a manager has to approve or reject before the order is rejected. */
  approvalTimeout: string;
  /** How long the payment provider has to confirm an authorization before the order is rejected. */
  paymentConfirmationTimeout: string;
  /** How long a scheduled shipment waits before it is dispatched: the window in which a cancellation still compensates. */
  dispatchDelay: string;
  /** How often a saga waiting for the payment provider's confirmation asks the provider itself (a lost callback). */
  paymentCheckInterval?: string;
}

/**
 * Who may call the API:
 * - `client`: an application placing orders (a web shop); it may place, read and cancel its own orders only;
 * - `manager`: approves or rejects orders above the approval threshold; reads any order and customer credit;
 * - `operator`: resumes sagas in NEEDS_ATTENTION; reads any order and customer credit.
 */
export const ROLES = ['client', 'manager', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiKey {
  role: Role;
  /** The client application or person the key belongs to, e.g. `web-shop` or `maria`: orders record it. */
  principal: string;
  key: string;
}

/** Secrets shorter than this are refused in production. */
export const MIN_SECRET_LENGTH = 32;

/** What `npm start` and the tests use when nothing is configured; refused in production. */
export const DEV_API_KEYS = 'client:web-shop=dev-client-key,manager:maria=dev-manager-key,operator:ops=dev-operator-key';
export const DEV_WEBHOOK_SECRET = 'dev-webhook-secret';
export const DEV_PROVIDER_API_KEY = 'dev-provider-key';
const DEV_KEYS = new Set(DEV_API_KEYS.split(',').map((entry) => entry.slice(entry.indexOf('=') + 1)));

/** A certificate or key, from a file or inline PEM, with the variable that named it (for error messages). */
export type TlsSource = { variable: string } & ({ path: string } | { data: string });

export interface TemporalTlsConfig {
  /** TEMPORAL_TLS; unset: TLS is on when an API key or a certificate is configured (the SDK's convention). */
  enabled?: boolean;
  serverName?: string;
  serverCaCert?: TlsSource;
  clientCert?: TlsSource;
  clientKey?: TlsSource;
}

/** `auto`: register missing ones, warn and go on if not allowed; `required`: fail if they cannot be; `off`: never touch them. */
export type SearchAttributeRegistration = 'auto' | 'required' | 'off';

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
/** `json`: one JSON object per line, for log collectors; `pretty`: a readable line, for a terminal. */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface Config {
  /** NODE_ENV=production: secrets must be set, long and not the development defaults. */
  production: boolean;
  temporal: {
    /** host:port of a Temporal frontend; unset means `npm start` runs its own dev server. */
    address?: string;
    namespace: string;
    /** Where people open the Temporal Web UI (printed by `npm start`, returned in API links). */
    uiUrl?: string;
    /** TEMPORAL_API_KEY, e.g. for Temporal Cloud (turns TLS on unless TEMPORAL_TLS=false). */
    apiKey?: string;
    tls: TemporalTlsConfig;
    /** TEMPORAL_GRPC_META_<NAME>: extra gRPC headers sent with every call. */
    grpcMeta: Record<string, string>;
    /** Whether workers (and `npm start`) register the OrderStatus and CustomerId search attributes. */
    searchAttributes: SearchAttributeRegistration;
  };
  /** Connection strings of the four service databases, when all four are set; unset means `npm start` runs embedded PostgreSQL. */
  databaseUrls?: DatabaseUrls;
  /** Whichever service database URLs are set: a worker needs only those of the services it hosts. */
  serviceDatabaseUrls: Partial<DatabaseUrls>;
  /** Where the public API reaches each service's read API (ORDERS_SERVICE_URL…); `npm start` serves them itself. */
  serviceUrls: Partial<Record<ServiceName, string>>;
  /** Where a worker serves the read APIs of the services it hosts (SERVICE_API_HOST, SERVICE_API_PORT). */
  serviceApi: { host: string; port: number };
  /** The query database (QUERY_DATABASE_URL): the views fed by events (src/query). */
  queryDatabaseUrl?: string;
  api: {
    host: string;
    port: number;
    publicUrl: string;
    /**
     * Back-pressure (ADMISSION_MAX_BACKLOG_AGE, default 2s, `off` to admit everything): new orders are refused with
     * 503 `overloaded` while a task queue's oldest waiting task is older than this (src/api/admission.ts).
     */
    maxBacklogAgeMs?: number;
  };
  /** Who may call the API (API_KEYS). */
  auth: {
    apiKeys: ApiKey[];
    /** True when API_KEYS was not set and the development keys are in use (never in production). */
    usingDevDefaults: boolean;
  };
  saga: SagaPolicy;
  payments: {
    /**
     * `sandbox`: the sandbox payment provider (src/payment-provider), its own process with its own store; `npm start`
     * runs it unless PAYMENT_PROVIDER_URL points at one. `external`: a real provider at PAYMENT_PROVIDER_URL.
     */
    provider: 'sandbox' | 'external';
    /** Where the payments service reaches the provider's API; unset with `sandbox` means `npm start` runs it. */
    providerUrl?: string;
    /** The key the payments service presents to the provider (the sandbox reads the same variable). */
    providerApiKey: string;
    /** Secret the provider signs its callbacks with (HMAC-SHA256 of the raw body, header X-Signature). */
    webhookSecret: string;
    /** Where the provider sends confirmations; the API's callback endpoint by default. */
    callbackUrl: string;
    /** How long the sandbox provider takes to confirm; `off`: only its decide endpoint decides (tests play the bank). */
    sandboxConfirmDelayMs: number | 'off';
  };
  events: {
    /** NATS servers with JetStream (NATS_URL, comma-separated for a cluster); unset: `npm start` runs its own. */
    natsServers?: string[];
    /** Replicas of every stream (NATS_STREAM_REPLICAS): 1 on one server, 3 on a three-node cluster. */
    streamReplicas: number;
    /**
     * How the relay reads each outbox (RELAY_MODE): `wal` tails the write-ahead log through logical replication
     * (needs wal_level=logical); `polling` queries the table, for databases without logical replication.
     */
    relayMode: 'wal' | 'polling';
    /** How long published outbox rows are kept before the relay deletes them (OUTBOX_RETENTION), in ms. */
    outboxRetentionMs: number;
  };
  /** The task queues a `npm run worker` process polls (WORKER_ROLES; `--only=` overrides it). */
  workerRoles: WorkerRole[];
  workers: {
    /** Connections per service database, and activities at once per service worker (DB_POOL_SIZE). */
    poolSize: number;
    /**
     * Activities a worker runs at once per service queue (ACTIVITY_CONCURRENCY), DB_POOL_SIZE unless set. More than
     * the pool makes activities wait for a connection; the chaos run sets it so to measure what that costs.
     */
    activityConcurrency: number;
    /** Attempts an unexpected activity error (a bug) gets before its saga stops for an operator (UNEXPECTED_ERROR_MAX_ATTEMPTS). */
    unexpectedErrorMaxAttempts: number;
    /**
     * Sagas a saga worker keeps in memory between their tasks (WORKFLOW_CACHE_SIZE). One evicted from the cache is
     * replayed from its history at its next task (a timer firing, a signal): memory traded for CPU. Unset: the SDK's
     * default, which grows with the heap limit (about 2,300 on a 4 GiB heap).
     */
    maxCachedWorkflows?: number;
    /**
     * A workflow bundle built by `npm run build:workflows` (WORKFLOW_BUNDLE): `npm run worker` loads it instead of
     * bundling the workflows at start, which costs webpack and about 130 MiB the worker keeps. It must come from the same
     * sources as the worker's activities (the image builds both). Unset: bundled at start.
     */
    workflowBundlePath?: string;
  };
  /**
   * LOG_LEVEL of every log line of the process (src/observability/logging.ts): the system's own, and the Temporal
   * SDK's, workflows' and activities', which go through the same logger. Unset: INFO.
   */
  logLevel?: LogLevelName;
  /** LOG_FORMAT; unset lets each program choose (`pretty` for `npm start`, `json` for the others). */
  logFormat?: LogFormat;
  /** Ports of the servers `npm start` runs itself. */
  localStack: {
    postgresPort: number;
    temporalPort: number;
    temporalUiPort: number;
    providerPort: number;
    natsPort: number;
    /** How the dev server writes its SQLite file (TEMPORAL_DEV_DURABILITY, src/local-stack/temporal-dev-server.ts). */
    temporalDurability: 'fast' | 'full';
  };
  /** Fault injection for reliability tests (src/worker/fault-injection.ts); unset in normal operation, refused in production. */
  faultInjection?: string;
  /** OpenTelemetry traces (src/observability/tracing.ts), the standard OTEL_* variables; off unless an OTLP endpoint is set. */
  tracing?: TracingConfig;
}

export interface TracingConfig {
  /**
   * Where spans are sent, OTLP over HTTP (protobuf): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, else
   * OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`; unset (or OTEL_SDK_DISABLED=true): tracing is off.
   */
  tracesEndpoint?: string;
  /** OTEL_SERVICE_NAME; unset: each program names itself (order-saga-api, order-saga-worker, …). */
  serviceName?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A variable's value; an empty string counts as unset (docker compose passes `${VAR:-}` as empty). */
function read(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function duration(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = read(env, name) ?? fallback;
  let ms: number;
  try {
    ms = msToNumber(value as never);
  } catch {
    ms = NaN;
  }
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new ConfigError(`${name} must be a positive duration such as "90s", "15 minutes" or "24h", got "${value}"`);
  }
  return value;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

const port = (env: NodeJS.ProcessEnv, name: string, fallback: number) => integer(env, name, fallback, 0, 65_535);

/** NATS_URL: one server or a comma-separated cluster, each `nats://host:port` (or tls://, ws://, wss://). */
function natsServers(env: NodeJS.ProcessEnv): string[] | undefined {
  const raw = read(env, 'NATS_URL');
  if (raw === undefined) return undefined;
  return raw.split(',').map((entry, i) => {
    const server = entry.trim();
    let parsed: URL | undefined;
    try {
      parsed = new URL(server);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['nats:', 'tls:', 'ws:', 'wss:'].includes(parsed.protocol) || !parsed.hostname) {
      throw new ConfigError(`NATS_URL entry ${i + 1} must be a URL such as nats://host:4222, got "${redactUrl(server)}"`);
    }
    return server;
  });
}

function url(env: NodeJS.ProcessEnv, name: string, fallback: string | undefined, protocols: string[]): string | undefined {
  const raw = read(env, name) ?? fallback;
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL (${protocols.map((p) => `${p}//…`).join(' or ')}), got "${redactUrl(raw)}"`);
  }
  if (!protocols.includes(parsed.protocol) || !parsed.hostname) {
    throw new ConfigError(`${name} must be a URL (${protocols.map((p) => `${p}//…`).join(' or ')}), got "${redactUrl(raw)}"`);
  }
  return raw.replace(/\/$/, '');
}

/** A URL as it may be printed: without its password. */
function redactUrl(raw: string): string {
  return raw.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, choices: readonly T[], fallback: T): T;
function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, choices: readonly T[], fallback?: undefined): T | undefined;
function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, choices: readonly T[], fallback?: T): T | undefined {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = choices.find((choice) => choice.toLowerCase() === raw.trim().toLowerCase());
  if (!value) throw new ConfigError(`${name} must be one of ${choices.join(', ')}, got "${raw}"`);
  return value;
}

function boolean(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  if (['true', '1'].includes(raw.trim().toLowerCase())) return true;
  if (['false', '0'].includes(raw.trim().toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/**
 * A secret: in production it must be set, at least MIN_SECRET_LENGTH characters, and not the development
 * default; elsewhere it falls back to that default. The value itself is never put in an error message.
 */
export function secret(env: NodeJS.ProcessEnv, name: string, devDefault: string, production: boolean): string {
  const value = read(env, name);
  if (!production) return value ?? devDefault;
  if (value === undefined) throw new ConfigError(`${name} must be set in production (NODE_ENV=production)`);
  if (value === devDefault) throw new ConfigError(`${name} is the development default; set a secret of your own in production`);
  if (value.length < MIN_SECRET_LENGTH) throw new ConfigError(`${name} is too short: production needs at least ${MIN_SECRET_LENGTH} characters`);
  return value;
}

/** All four service databases (npm start's "external databases" mode), or none; whichever are set besides. */
function databaseSettings(env: NodeJS.ProcessEnv): { databaseUrls?: DatabaseUrls; serviceDatabaseUrls: Partial<DatabaseUrls> } {
  const given = serviceDatabaseUrls(env);
  return { databaseUrls: SERVICES.every((service) => given[service]) ? (given as DatabaseUrls) : undefined, serviceDatabaseUrls: given };
}

/** The name of a service's variable, e.g. INVENTORY_DATABASE_URL. */
export const serviceVariable = (service: ServiceName, suffix: 'DATABASE_URL' | 'SERVICE_URL') => `${service.toUpperCase()}_${suffix}`;

/** Whichever service database URLs are set, each checked. */
function serviceDatabaseUrls(env: NodeJS.ProcessEnv): Partial<DatabaseUrls> {
  const urls: Partial<DatabaseUrls> = {};
  for (const service of SERVICES) {
    const value = url(env, serviceVariable(service, 'DATABASE_URL'), undefined, ['postgres:', 'postgresql:']);
    if (value) urls[service] = value;
  }
  return urls;
}

/** Whichever service read API URLs are set, each checked. */
function serviceUrls(env: NodeJS.ProcessEnv): Partial<Record<ServiceName, string>> {
  const urls: Partial<Record<ServiceName, string>> = {};
  for (const service of SERVICES) {
    const value = url(env, serviceVariable(service, 'SERVICE_URL'), undefined, ['http:', 'https:']);
    if (value) urls[service] = value;
  }
  return urls;
}

/**
 * The URLs of `services`, or a ConfigError naming the missing variables (`what` says who needs them). For
 * processes that must have all four (npm start, the relay, the audit), a half-configured set would silently mix
 * embedded and real databases.
 */
export function requireServiceUrls<T extends string>(given: Partial<Record<ServiceName, T>>, services: readonly ServiceName[], suffix: 'DATABASE_URL' | 'SERVICE_URL', what: string): Record<ServiceName, T> {
  const missing = services.filter((service) => !given[service]).map((service) => serviceVariable(service, suffix));
  if (missing.length > 0) throw new ConfigError(`${what} needs ${missing.join(', ')}`);
  return given as Record<ServiceName, T>;
}

const PRINCIPAL = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const KEY = /^[\x21-\x2b\x2d-\x7e]+$/; // printable ASCII without spaces or commas

/**
 * API_KEYS: `role:principal=key` entries separated by commas, e.g.
 * `client:web-shop=<key>,manager:maria=<key>,operator:ops=<key>`. A principal may have several keys (rotation).
 */
export function parseApiKeys(raw: string, production: boolean): ApiKey[] {
  const keys: ApiKey[] = [];
  const entries = raw.split(',').map((entry) => entry.trim());
  entries.forEach((entry, index) => {
    const where = `API_KEYS entry ${index + 1}`;
    const eq = entry.indexOf('=');
    const [role, principal, ...rest] = (eq < 0 ? entry : entry.slice(0, eq)).split(':');
    const key = eq < 0 ? '' : entry.slice(eq + 1);
    const label = `${where} (${eq < 0 ? 'no "="' : `${role}:${principal ?? ''}`})`;
    if (eq < 0 || principal === undefined || rest.length > 0) throw new ConfigError(`${label} must be role:principal=key`);
    if (!(ROLES as readonly string[]).includes(role)) throw new ConfigError(`${label}: the role must be one of ${ROLES.join(', ')}`);
    if (!PRINCIPAL.test(principal)) throw new ConfigError(`${label}: the principal must be 1-64 letters, digits, '.', '_', '@' or '-'`);
    if (!KEY.test(key)) throw new ConfigError(`${label}: the key must be printable ASCII without spaces or commas`);
    if (production) {
      if (DEV_KEYS.has(key)) throw new ConfigError(`${label}: the key is a development default; set keys of your own in production`);
      if (key.length < MIN_SECRET_LENGTH) throw new ConfigError(`${label}: the key is too short: production needs at least ${MIN_SECRET_LENGTH} characters`);
    }
    if (keys.some((existing) => existing.key === key)) throw new ConfigError(`${label}: the same key is given twice; every key must be distinct`);
    keys.push({ role: role as Role, principal, key });
  });
  return keys;
}

function apiKeys(env: NodeJS.ProcessEnv, production: boolean): Config['auth'] {
  const raw = read(env, 'API_KEYS');
  if (raw === undefined) {
    if (production) throw new ConfigError('API_KEYS must be set in production (NODE_ENV=production), e.g. client:web-shop=<key>,manager:maria=<key>,operator:ops=<key>');
    return { apiKeys: parseApiKeys(DEV_API_KEYS, false), usingDevDefaults: true };
  }
  return { apiKeys: parseApiKeys(raw, production), usingDevDefaults: false };
}

/** WORKER_ROLES (or a worker's `--only=`): a comma-separated subset of the task queues. */
export function parseWorkerRoles(raw: string | undefined, name = 'WORKER_ROLES'): WorkerRole[] {
  if (raw === undefined || raw.trim() === '') return [...WORKER_ROLES];
  const roles = raw.split(',').map((role) => role.trim()).filter(Boolean);
  const unknown = roles.filter((role) => !WORKER_ROLES.includes(role as WorkerRole));
  if (unknown.length > 0 || roles.length === 0) {
    throw new ConfigError(`${name}: unknown worker role(s) ${unknown.join(', ') || '(none given)'}; choose from ${WORKER_ROLES.join(', ')}`);
  }
  return [...new Set(roles)] as WorkerRole[];
}

/** host:port, or [ipv6]:port. */
function temporalAddress(env: NodeJS.ProcessEnv): string | undefined {
  const raw = read(env, 'TEMPORAL_ADDRESS');
  if (raw === undefined) return undefined;
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw.trim());
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65_535) {
    throw new ConfigError(`TEMPORAL_ADDRESS must be host:port, e.g. temporal:7233 or my-ns.a1b2c.tmprl.cloud:7233, got "${raw}"`);
  }
  return raw.trim();
}

function tlsSource(env: NodeJS.ProcessEnv, base: string): TlsSource | undefined {
  const path = read(env, `${base}_PATH`);
  const data = read(env, `${base}_DATA`);
  if (path !== undefined && data !== undefined) throw new ConfigError(`set ${base}_PATH or ${base}_DATA, not both`);
  if (path !== undefined) return { variable: `${base}_PATH`, path };
  if (data !== undefined) {
    if (!data.includes('-----BEGIN')) throw new ConfigError(`${base}_DATA must be PEM data (-----BEGIN …)`);
    return { variable: `${base}_DATA`, data };
  }
  return undefined;
}

/**
 * The Temporal connection, by the SDKs' environment-configuration conventions: TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_{CLIENT_CERT,CLIENT_KEY,SERVER_CA_CERT}_{PATH,DATA},
 * TEMPORAL_TLS_SERVER_NAME and TEMPORAL_GRPC_META_<NAME>. Profiles from a TOML file are not read: this service
 * takes its whole configuration from its environment.
 */
function temporal(env: NodeJS.ProcessEnv): Config['temporal'] {
  for (const name of ['TEMPORAL_CONFIG_FILE', 'TEMPORAL_PROFILE']) {
    if (read(env, name) !== undefined) {
      throw new ConfigError(`${name} is not supported: set TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TEMPORAL_TLS_* instead`);
    }
  }
  const address = temporalAddress(env);
  const namespace = read(env, 'TEMPORAL_NAMESPACE') ?? 'default';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(namespace)) throw new ConfigError(`TEMPORAL_NAMESPACE must be a namespace name, got "${namespace}"`);
  const apiKey = read(env, 'TEMPORAL_API_KEY');
  if (apiKey !== undefined && /\s/.test(apiKey)) throw new ConfigError('TEMPORAL_API_KEY must not contain whitespace');
  const tls: TemporalTlsConfig = {
    enabled: boolean(env, 'TEMPORAL_TLS'),
    serverName: read(env, 'TEMPORAL_TLS_SERVER_NAME'),
    serverCaCert: tlsSource(env, 'TEMPORAL_TLS_SERVER_CA_CERT'),
    clientCert: tlsSource(env, 'TEMPORAL_TLS_CLIENT_CERT'),
    clientKey: tlsSource(env, 'TEMPORAL_TLS_CLIENT_KEY'),
  };
  if (!tls.clientCert !== !tls.clientKey) {
    throw new ConfigError('TEMPORAL_TLS_CLIENT_CERT_* and TEMPORAL_TLS_CLIENT_KEY_* go together (mTLS needs both)');
  }
  const tlsSettings = [tls.serverName, tls.serverCaCert, tls.clientCert].some((setting) => setting !== undefined);
  if (tls.enabled === false && tlsSettings) throw new ConfigError('TEMPORAL_TLS=false contradicts the TEMPORAL_TLS_* certificate settings');
  const grpcMeta: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('TEMPORAL_GRPC_META_') || !value) continue;
    const header = name.slice('TEMPORAL_GRPC_META_'.length).toLowerCase().replaceAll('_', '-');
    if (!/^[a-z0-9][a-z0-9-]*$/.test(header)) throw new ConfigError(`${name} does not name a valid gRPC header`);
    grpcMeta[header] = value;
  }
  if (!address && (apiKey !== undefined || tls.enabled || tlsSettings || Object.keys(grpcMeta).length > 0)) {
    throw new ConfigError('TEMPORAL_API_KEY, TEMPORAL_TLS* and TEMPORAL_GRPC_META_* need TEMPORAL_ADDRESS (without it, `npm start` runs a local dev server)');
  }
  return {
    address,
    namespace,
    uiUrl: url(env, 'TEMPORAL_UI_URL', undefined, ['http:', 'https:']),
    apiKey,
    tls,
    grpcMeta,
    searchAttributes: oneOf(env, 'REGISTER_SEARCH_ATTRIBUTES', ['auto', 'required', 'off'] as const, 'auto'),
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const production = read(env, 'NODE_ENV') === 'production';
  if (read(env, 'MANAGER_TOKEN') !== undefined) {
    throw new ConfigError('MANAGER_TOKEN is no longer read: give managers keys in API_KEYS instead (manager:<name>=<key>)');
  }
  const faultInjection = read(env, 'FAULT_INJECTION');
  if (production && faultInjection !== undefined) throw new ConfigError('FAULT_INJECTION must not be set in production (NODE_ENV=production)');

  const apiPort = port(env, 'PORT', 3000);
  const poolSize = integer(env, 'DB_POOL_SIZE', 10, 1, 500);
  const host = read(env, 'HOST') ?? '127.0.0.1';
  if (/\s|\//.test(host)) throw new ConfigError(`HOST must be a host name or IP address, got "${host}"`);
  const publicUrl = url(env, 'PUBLIC_URL', `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${apiPort}`, ['http:', 'https:'])!;
  return {
    production,
    temporal: temporal(env),
    ...databaseSettings(env),
    serviceUrls: serviceUrls(env),
    serviceApi: { host: read(env, 'SERVICE_API_HOST') ?? '127.0.0.1', port: port(env, 'SERVICE_API_PORT', 3200) },
    queryDatabaseUrl: url(env, 'QUERY_DATABASE_URL', undefined, ['postgres:', 'postgresql:']),
    api: {
      host,
      port: apiPort,
      publicUrl,
      maxBacklogAgeMs: read(env, 'ADMISSION_MAX_BACKLOG_AGE') === 'off' ? undefined : msToNumber(duration(env, 'ADMISSION_MAX_BACKLOG_AGE', '2s') as never),
    },
    auth: apiKeys(env, production),
    saga: {
      approvalThresholdCents: integer(env, 'APPROVAL_THRESHOLD_CENTS', 100_000, 0, MAX_ORDER_TOTAL_CENTS),
      approvalTimeout: duration(env, 'APPROVAL_TIMEOUT', '24h'),
      paymentConfirmationTimeout: duration(env, 'PAYMENT_CONFIRMATION_TIMEOUT', '15m'),
      dispatchDelay: duration(env, 'DISPATCH_DELAY', '10s'),
      paymentCheckInterval: duration(env, 'PAYMENT_CHECK_INTERVAL', '30s'),
    },
    payments: {
      provider: oneOf(env, 'PAYMENT_PROVIDER', ['sandbox', 'external'] as const, 'sandbox'),
      webhookSecret: secret(env, 'PAYMENT_WEBHOOK_SECRET', DEV_WEBHOOK_SECRET, production),
      callbackUrl: url(env, 'PAYMENT_CALLBACK_URL', `${publicUrl}/payments/callback`, ['http:', 'https:'])!,
      providerUrl: url(env, 'PAYMENT_PROVIDER_URL', undefined, ['http:', 'https:']),
      providerApiKey: secret(env, 'PAYMENT_PROVIDER_API_KEY', DEV_PROVIDER_API_KEY, production),
      sandboxConfirmDelayMs:
        read(env, 'SANDBOX_CONFIRM_DELAY_MS') === 'off' ? 'off' : integer(env, 'SANDBOX_CONFIRM_DELAY_MS', 1000, 0, 3_600_000),
    },
    events: {
      natsServers: natsServers(env),
      streamReplicas: integer(env, 'NATS_STREAM_REPLICAS', 1, 1, 5),
      relayMode: oneOf(env, 'RELAY_MODE', ['wal', 'polling'] as const, 'wal'),
      outboxRetentionMs: msToNumber(duration(env, 'OUTBOX_RETENTION', '7 days') as never),
    },
    workerRoles: parseWorkerRoles(read(env, 'WORKER_ROLES')),
    workers: {
      poolSize,
      activityConcurrency: integer(env, 'ACTIVITY_CONCURRENCY', poolSize, 1, 5_000),
      unexpectedErrorMaxAttempts: integer(env, 'UNEXPECTED_ERROR_MAX_ATTEMPTS', 5, 1, 1_000),
      ...(read(env, 'WORKFLOW_CACHE_SIZE') === undefined ? {} : { maxCachedWorkflows: integer(env, 'WORKFLOW_CACHE_SIZE', 0, 2, 1_000_000) }),
      ...(read(env, 'WORKFLOW_BUNDLE') === undefined ? {} : { workflowBundlePath: read(env, 'WORKFLOW_BUNDLE') }),
    },
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS),
    logFormat: oneOf(env, 'LOG_FORMAT', LOG_FORMATS),
    localStack: {
      postgresPort: port(env, 'EMBEDDED_POSTGRES_PORT', 54329),
      temporalPort: port(env, 'TEMPORAL_DEV_PORT', 7233),
      temporalUiPort: port(env, 'TEMPORAL_UI_PORT', 8233),
      providerPort: port(env, 'PROVIDER_PORT', 3100),
      natsPort: port(env, 'NATS_PORT', 4222),
      temporalDurability: oneOf(env, 'TEMPORAL_DEV_DURABILITY', ['fast', 'full'] as const, 'fast'),
    },
    faultInjection,
    tracing: tracing(env),
  };
}

/** The standard OpenTelemetry variables this system reads (the OTLP exporter also reads OTEL_EXPORTER_OTLP_HEADERS and the like itself). */
function tracing(env: NodeJS.ProcessEnv): TracingConfig {
  const disabled = boolean(env, 'OTEL_SDK_DISABLED') ?? false;
  const traces = url(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', undefined, ['http:', 'https:']);
  const base = url(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', undefined, ['http:', 'https:']);
  const serviceName = read(env, 'OTEL_SERVICE_NAME');
  return { tracesEndpoint: disabled ? undefined : (traces ?? (base ? `${base}/v1/traces` : undefined)), serviceName };
}

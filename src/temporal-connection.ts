// How every part of the system connects to Temporal: the API's client `Connection` and the workers'
// `NativeConnection` get their options from one function, built from the validated configuration
// (src/config.ts) by the SDK's environment-configuration rules (@temporalio/envconfig): an API key turns TLS on
// unless TEMPORAL_TLS=false, certificates come from a path or inline PEM, TEMPORAL_GRPC_META_* become headers.
// Kept apart from src/config.ts because it reads files (certificates), which workflow code must never import.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from '@temporalio/client';
import { toClientOptions, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { ConfigError, type Config, type TlsSource } from './config';

export interface TemporalConnectionOptions {
  /** For `Connection.connect` / `Connection.lazy` (the API, admin calls). */
  client: ConnectionOptions;
  /** For `NativeConnection.connect` (workers). */
  worker: NativeConnectionOptions;
  namespace: string;
}

/** Reads a certificate file now, so that a missing or unreadable one stops the process at start, naming its variable. */
function source(tls: TlsSource | undefined): ConfigDataSource | undefined {
  if (!tls) return undefined;
  if ('data' in tls) return { data: tls.data };
  try {
    return { data: readFileSync(tls.path, 'utf8') };
  } catch (error) {
    throw new ConfigError(`${tls.variable}: cannot read ${tls.path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

/**
 * Connection options for the configured Temporal server. `address` overrides the configured one (the dev server
 * `npm start` runs itself, or a test's); it is required when the configuration has none.
 */
export function temporalConnectionOptions(temporal: Config['temporal'], address = temporal.address): TemporalConnectionOptions {
  if (!address) throw new ConfigError('TEMPORAL_ADDRESS is not set');
  const { tls } = temporal;
  const hasTlsSettings = tls.serverName !== undefined || tls.serverCaCert !== undefined || tls.clientCert !== undefined;
  const profile: ClientConfigProfile = {
    address,
    namespace: temporal.namespace,
    apiKey: temporal.apiKey,
    // As the SDK reads TEMPORAL_TLS: explicit on/off; otherwise on when certificates are given, or (in
    // toClientOptions) when an API key is.
    tls:
      tls.enabled === undefined && !hasTlsSettings
        ? undefined
        : {
            disabled: tls.enabled === false,
            serverName: tls.serverName,
            serverCACert: source(tls.serverCaCert),
            clientCert: source(tls.clientCert),
            clientKey: source(tls.clientKey),
          },
    grpcMeta: Object.keys(temporal.grpcMeta).length > 0 ? temporal.grpcMeta : undefined,
  };
  const { connectionOptions } = toClientOptions(profile);
  const common = {
    address,
    ...(connectionOptions.tls !== undefined ? { tls: asBuffers(connectionOptions.tls) } : {}),
    ...(connectionOptions.apiKey !== undefined ? { apiKey: connectionOptions.apiKey } : {}),
    ...(connectionOptions.metadata ? { metadata: connectionOptions.metadata } : {}),
  };
  return { client: { ...common }, worker: { ...common }, namespace: temporal.namespace };
}

/** The SDK's envconfig gives PEM data as Uint8Array; both connections' TLS options are typed (and safest) as Buffers. */
function asBuffers(tls: NativeConnectionOptions['tls']): NativeConnectionOptions['tls'] {
  if (!tls || typeof tls !== 'object') return tls;
  const buffer = (data: Uint8Array | undefined) => (data === undefined ? undefined : Buffer.from(data));
  return {
    ...(tls.serverNameOverride !== undefined ? { serverNameOverride: tls.serverNameOverride } : {}),
    ...(tls.serverRootCACertificate !== undefined ? { serverRootCACertificate: buffer(tls.serverRootCACertificate) } : {}),
    ...(tls.clientCertPair ? { clientCertPair: { crt: buffer(tls.clientCertPair.crt)!, key: buffer(tls.clientCertPair.key)! } } : {}),
  };
}

/** Where the connection goes, for logs: the address and whether TLS / an API key are used (never the key). */
export function describeTemporalConnection(options: TemporalConnectionOptions): string {
  const { address, tls, apiKey } = options.client;
  return `${address} (namespace ${options.namespace}${tls ? ', TLS' : ''}${apiKey ? ', API key' : ''})`;
}

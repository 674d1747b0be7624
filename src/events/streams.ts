// The message stream between the services, declared in one place: one JetStream stream per publishing
// service, holding that service's domain events under `<service>.events.<type>`, plus the dead letters.
// Created (or brought up to date) idempotently at start by whoever connects first: `npm start`, the relay,
// a consumer. Events are kept (limits retention, no age limit): the query side can be rebuilt from the start.
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import type { NatsConnection } from '@nats-io/nats-core';
import { SERVICES, type ServiceName } from '../config';

/** How long JetStream remembers a message id (Nats-Msg-Id) to drop a republished duplicate. */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;

/** The stream that holds a service's events, e.g. INVENTORY_EVENTS. */
export function streamOf(service: ServiceName): string {
  return `${service.toUpperCase()}_EVENTS`;
}

/** The subject of one event type of a service, e.g. `inventory.events.StockReserved`. */
export function subjectOf(service: ServiceName, eventType: string): string {
  return `${service}.events.${eventType}`;
}

/** Where a consumer puts an event it could not apply after its last delivery: `deadletter.<consumer>`. */
export const DEAD_LETTER_STREAM = 'DEAD_LETTERS';
export function deadLetterSubject(consumer: string): string {
  return `deadletter.${consumer}`;
}

export interface StreamOptions {
  /** 1 for the embedded single server; 3 on a three-node cluster (docker-compose.yml). */
  replicas: number;
}

/** Every stream the system uses, with its full configuration. */
export type StreamDeclaration = Partial<StreamConfig> & { name: string; subjects: string[] };

export function streamConfigs({ replicas }: StreamOptions): StreamDeclaration[] {
  const common = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: replicas,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  };
  return [
    ...SERVICES.map((service) => ({ ...common, name: streamOf(service), subjects: [`${service}.events.>`], description: `domain events of the ${service} service` })),
    { ...common, name: DEAD_LETTER_STREAM, subjects: ['deadletter.>'], description: 'events a consumer could not apply, with the reason' },
  ];
}

/**
 * Creates the streams that are missing and updates the ones whose subjects, replicas or window changed. Safe to
 * run from several processes at once: a concurrent creation of the same stream is answered as already there.
 */
export async function ensureStreams(nc: NatsConnection, options: StreamOptions): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const config of streamConfigs(options)) await ensureStream(jsm, config);
}

async function ensureStream(jsm: JetStreamManager, config: StreamDeclaration): Promise<void> {
  const existing = await jsm.streams.info(config.name).catch((error: unknown) => {
    if (isStreamNotFound(error)) return undefined;
    throw error;
  });
  if (!existing) {
    try {
      await jsm.streams.add(config);
      return;
    } catch (error) {
      // Another process created it between our look and our add: fall through and compare.
      if (!/already in use|already exists/i.test(String(error))) throw error;
    }
  }
  const current = existing?.config ?? (await jsm.streams.info(config.name)).config;
  const same =
    JSON.stringify(current.subjects) === JSON.stringify(config.subjects) &&
    current.num_replicas === config.num_replicas &&
    current.duplicate_window === config.duplicate_window;
  if (!same) await jsm.streams.update(config.name, config);
}

function isStreamNotFound(error: unknown): boolean {
  const { code, api_error } = error as { code?: unknown; api_error?: { err_code?: number } };
  return api_error?.err_code === 10059 || code === '404' || /stream not found/i.test(String(error));
}

// The state of the event path in one report, for `npm run events:status`: each service's outbox and replication
// slot, each JetStream stream, each durable consumer the server knows (not only the ones this code declares: a
// consumer left behind by an old deployment holds messages too), and the dead letters by consumer.
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { SERVICES, type DatabaseUrls, type ServiceName } from '../config';
import { outboxStatus, type OutboxStatus } from './relay-status';
import { DEAD_LETTER_STREAM, streamOf } from './streams';

export interface ServiceOutboxStatus extends OutboxStatus {
  service: ServiceName;
}

export interface ConsumerStatus {
  name: string;
  /** Messages not delivered yet (num_pending). */
  pending: number;
  /** Delivered, not acknowledged yet (num_ack_pending). */
  waitingForAck: number;
  /** Messages delivered more than once (num_redelivered). */
  redelivered: number;
  /** The stream sequence of the last message delivered; 0 before the first. */
  lastDeliveredSequence: number;
}

export interface StreamStatus {
  name: string;
  /** null when the stream does not exist (`npm start` and `npm run db:provision` create it). */
  state: null | { messages: number; bytes: number; firstSequence: number; lastSequence: number };
  consumers: ConsumerStatus[];
}

export interface EventsStatusReport {
  generatedAt: string;
  outboxes: ServiceOutboxStatus[];
  streams: StreamStatus[];
  deadLetters: {
    total: number;
    /** Messages per subject, `deadletter.<consumer>` → count. */
    bySubject: Record<string, number>;
  };
}

export async function eventsStatus({ databaseUrls, nats }: { databaseUrls: DatabaseUrls; nats: NatsConnection }): Promise<EventsStatusReport> {
  const [outboxes, streams] = await Promise.all([outboxesOf(databaseUrls), streamsOf(nats)]);
  const deadLetters = streams.find((stream) => stream.status.name === DEAD_LETTER_STREAM)!;
  return {
    generatedAt: new Date().toISOString(),
    outboxes,
    streams: streams.map(({ status }) => status),
    deadLetters: { total: deadLetters.status.state?.messages ?? 0, bySubject: deadLetters.subjects },
  };
}

/** Every database is asked, so that an error names all the unreachable ones at once, not only the first. */
async function outboxesOf(urls: DatabaseUrls): Promise<ServiceOutboxStatus[]> {
  const results = await Promise.allSettled(SERVICES.map(async (service) => ({ service, ...(await outboxStatus(urls[service])) })));
  const failures = results.flatMap((result, i) =>
    result.status === 'rejected' ? [`the ${SERVICES[i]} database (${whereIs(urls[SERVICES[i]])}): ${messageOf(result.reason)}`] : [],
  );
  if (failures.length > 0) throw new Error(`cannot read ${failures.join('; ')}`);
  return results.map((result) => (result as PromiseFulfilledResult<ServiceOutboxStatus>).value);
}

async function streamsOf(nats: NatsConnection): Promise<{ status: StreamStatus; subjects: Record<string, number> }[]> {
  try {
    const jsm = await jetstreamManager(nats);
    return await Promise.all([...SERVICES.map(streamOf), DEAD_LETTER_STREAM].map((name) => streamStatus(jsm, name)));
  } catch (error) {
    throw new Error(`cannot read JetStream at ${nats.getServer()}: ${messageOf(error)}`);
  }
}

async function streamStatus(jsm: JetStreamManager, name: string): Promise<{ status: StreamStatus; subjects: Record<string, number> }> {
  // The dead letters' subject counts come with the same request (the server answers them for a filter only).
  const info = await jsm.streams.info(name, name === DEAD_LETTER_STREAM ? { subjects_filter: '>' } : undefined).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
  if (!info) return { status: { name, state: null, consumers: [] }, subjects: {} };
  const consumers: ConsumerStatus[] = [];
  for await (const consumer of jsm.consumers.list(name)) {
    consumers.push({
      name: consumer.name,
      pending: consumer.num_pending,
      waitingForAck: consumer.num_ack_pending,
      redelivered: consumer.num_redelivered,
      lastDeliveredSequence: consumer.delivered.stream_seq,
    });
  }
  consumers.sort((a, b) => a.name.localeCompare(b.name));
  const { messages, bytes, first_seq, last_seq } = info.state;
  return {
    status: { name, state: { messages, bytes, firstSequence: first_seq, lastSequence: last_seq }, consumers },
    subjects: info.state.subjects ?? {},
  };
}

function isNotFound(error: unknown): boolean {
  const { api_error } = error as { api_error?: { err_code?: number } };
  return api_error?.err_code === 10059 || /stream not found/i.test(String(error));
}

/** host:port/database of a connection string: enough to say which one, without its password. */
function whereIs(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    return `${url.host}${url.pathname}`;
  } catch {
    return 'an unparseable URL';
  }
}

function messageOf(error: unknown): string {
  // pg reports a refused connection as an AggregateError (one per address tried) whose own message is empty.
  if (error instanceof AggregateError && !error.message) return error.errors.map(messageOf).join(', ');
  return error instanceof Error ? error.message || error.name : String(error);
}

export function formatEventsStatus(report: EventsStatusReport): string {
  const outboxes = table(
    ['service', 'backlog', 'oldest unpublished', 'published kept', 'slot', 'active', 'wal status', 'slot lag'],
    report.outboxes.map(({ service, backlog, oldestUnpublishedAgeMs, published, slot }) => [
      service,
      backlog,
      oldestUnpublishedAgeMs === null ? '-' : formatAge(oldestUnpublishedAgeMs),
      published,
      slot?.name ?? 'none',
      slot ? (slot.active ? 'yes' : 'no') : '-',
      slot?.walStatus ?? '-',
      slot?.lagBytes == null ? '-' : formatBytes(slot.lagBytes),
    ]),
  );
  const streams = table(
    ['stream', 'messages', 'bytes', 'first seq', 'last seq'],
    report.streams.map(({ name, state }) =>
      state ? [name, state.messages, formatBytes(state.bytes), state.firstSequence, state.lastSequence] : [name, 'missing', '-', '-', '-'],
    ),
  );
  const consumerRows = report.streams.flatMap(({ name, consumers }) =>
    consumers.map((consumer) => [name, consumer.name, consumer.pending, consumer.waitingForAck, consumer.redelivered, consumer.lastDeliveredSequence]),
  );
  const consumers =
    consumerRows.length > 0 ? table(['stream', 'consumer', 'pending', 'waiting for ack', 'redelivered', 'last delivered'], consumerRows) : ['(no durable consumer)'];
  const subjects = Object.entries(report.deadLetters.bySubject).sort(([a], [b]) => a.localeCompare(b));
  const deadLetters = subjects.length > 0 ? table(['subject', 'dead letters'], subjects) : [];
  return [
    'Outboxes',
    ...outboxes,
    '',
    'Streams',
    ...streams,
    '',
    'Consumers',
    ...consumers,
    '',
    `Dead letters: ${report.deadLetters.total}`,
    ...deadLetters,
  ].join('\n');
}

/** Rows padded to aligned columns: text to the left, columns of numbers to the right. */
function table(headers: string[], rows: (string | number)[][]): string[] {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column].length)));
  const numeric = headers.map((_, column) => rows.some((row) => typeof row[column] === 'number'));
  return cells.map((row) =>
    row
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd(),
  );
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatAge(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

// Consuming events: a durable JetStream consumer with explicit acks, applied once through an inbox.
//
// - Durable: the consumer lives on the server under its name, so a restarted process resumes where the last one
//   acknowledged; an event applied but not acknowledged (a crash in between) is delivered again.
// - Applied once: `applyOnce` records the event id in the consuming database's `inbox` table in the same
//   transaction as the effect; a redelivered event finds its id there and changes nothing.
// - In order: messages are handled one at a time in stream order, and a failing one is retried in place (the
//   server is told it is still being worked on), so a later event of the same aggregate never overtakes it.
// - Never stuck, never dropped: a fault that goes away by itself (the database down) is retried for as long as
//   it lasts; any other failure is retried up to `maxDeliveries` times (counting deliveries to processes that
//   crashed on it), then the event is published to the dead-letter subject with its reason, recorded in the
//   inbox as dead-lettered, logged, and acknowledged, and the consumer goes on with the next one.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerConfig, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import { isTransientError } from '../worker/error-classification';
import { eventLogFields, silentLogger, type Logger } from '../observability/logging';
import { contextFromCarrier, inSpan, SpanKind, tracingEnabled, type TraceCarrier } from '../observability/tracing';
import type { EventEnvelope } from './relay';
import { deadLetterSubject } from './streams';

/** An event as a consumer receives it: the envelope, where it sits in its stream, and how often it was delivered. */
export interface ConsumedEvent {
  envelope: EventEnvelope;
  stream: string;
  streamSequence: number;
  deliveries: number;
}

/** What a dead-letter message carries: the event (or the raw data), which consumer gave up, and why. */
export interface DeadLetter {
  consumer: string;
  stream: string;
  streamSequence: number;
  deliveries: number;
  reason: string;
  event: EventEnvelope | { unparseable: string };
  deadLetteredAt: string;
}

export const DEFAULT_MAX_DELIVERIES = 5;

/** How long the server waits for an ack before redelivering; a message being retried in place is kept alive. */
const ACK_WAIT_MS = 30_000;

export interface DurableConsumerOptions {
  nats: NatsConnection;
  /** The durable consumer's name, e.g. `query-orders`; also the inbox's consumer column. */
  name: string;
  stream: string;
  /** Only these subjects of the stream (e.g. `inventory.events.StockReserved`); all of them if absent. */
  subjects?: string[];
  /** Applies one event, idempotently (see applyOnce). */
  handle(event: ConsumedEvent): Promise<void>;
  /** Records that an event was dead-lettered (e.g. in the inbox), so that it is reported and not applied later. */
  recordDeadLetter?(event: ConsumedEvent, reason: string): Promise<void>;
  /** Attempts before an event that keeps failing is dead-lettered. */
  maxDeliveries?: number;
  /** Where the consumer says what it applied (debug), retries and dead-letters; silent if absent. */
  logger?: Logger;
}

/** The server-side configuration of a durable consumer: explicit acks, every event from the start, no server-side give-up. */
export function durableConsumerConfig(name: string, subjects?: string[]): Partial<ConsumerConfig> {
  return {
    durable_name: name,
    ...(subjects ? { filter_subjects: subjects } : {}),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ACK_WAIT_MS),
    // The consumer itself decides when to give up (dead letter): the server must never drop a message silently.
    max_deliver: -1,
    // One event in flight: handled in stream order even across processes sharing the consumer (the others stand
    // by), and a delivery count that only grows when a process failed on that very event (never because it sat
    // in a buffer while an earlier one was retried).
    max_ack_pending: 1,
  };
}

/** Creates the durable consumer if it is missing, or brings its configuration up to date (safe from several processes at once). */
export async function ensureDurableConsumer(nc: NatsConnection, stream: string, name: string, subjects?: string[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const wanted = durableConsumerConfig(name, subjects);
  const existing = await jsm.consumers.info(stream, name).catch(() => undefined);
  if (!existing) {
    await jsm.consumers.add(stream, wanted);
    return;
  }
  const { config } = existing;
  const sameSubjects = (config.filter_subjects ?? (config.filter_subject ? [config.filter_subject] : [])).join() === (subjects ?? []).join();
  if (config.max_ack_pending !== wanted.max_ack_pending || config.max_deliver !== wanted.max_deliver || config.ack_wait !== wanted.ack_wait || !sameSubjects) {
    await jsm.consumers.update(stream, name, {
      max_ack_pending: wanted.max_ack_pending,
      max_deliver: wanted.max_deliver,
      ack_wait: wanted.ack_wait,
      ...(sameSubjects ? {} : { filter_subjects: subjects ?? [] }),
    });
  }
}

export class DurableConsumer {
  private running = false;
  private messages?: ConsumerMessages;
  private readonly maxDeliveries: number;
  private readonly logger: Logger;
  /** Events applied and dead-lettered by this process (for logs and tests). */
  readonly counts = { applied: 0, deadLettered: 0 };

  constructor(private readonly options: DurableConsumerOptions) {
    this.maxDeliveries = options.maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
    this.logger = (options.logger ?? silentLogger).child({ component: 'consumer', consumer: options.name, stream: options.stream });
  }

  /** Consumes until stop(); reconnects by itself after NATS or the consumer went away. */
  async run({ retryMs = 1_000 } = {}): Promise<void> {
    this.running = true;
    const { nats, stream, name, subjects } = this.options;
    while (this.running) {
      try {
        await ensureDurableConsumer(nats, stream, name, subjects);
        const consumer = await jetstream(nats).consumers.get(stream, name);
        this.messages = await consumer.consume({ max_messages: 10 });
        for await (const message of this.messages) {
          if (!this.running) break; // not acknowledged: delivered again to whoever consumes next
          await this.processTraced(message);
        }
      } catch (error) {
        if (this.running) this.logger.warn({ err: error }, `consuming failed; retrying in ${retryMs} ms`);
      } finally {
        this.messages = undefined;
      }
      if (this.running) await sleep(retryMs);
    }
  }

  /** Stops after the event in hand; what was delivered but not handled is delivered again later. */
  stop(): void {
    this.running = false;
    void this.messages?.close().catch(() => {});
  }

  /**
   * process() in a `process <subject>` span while tracing is on: the child of the context the relay sent in the
   * message's `traceparent` header (its publish span), so that the event's handling, its database work included,
   * continues the trace of the activity that wrote the event. Redeliveries are spans of their own in the same trace.
   */
  private processTraced(message: JsMsg): Promise<void> {
    if (!tracingEnabled()) return this.process(message);
    const carrier: TraceCarrier = {};
    for (const name of ['traceparent', 'tracestate']) {
      const value = message.headers?.get(name);
      if (value) carrier[name] = value;
    }
    const attributes = {
      'messaging.system': 'nats',
      'messaging.operation.type': 'process',
      'messaging.destination.name': message.subject,
      'messaging.consumer.group.name': this.options.name,
      'messaging.message.id': message.headers?.get('Nats-Msg-Id') ?? '',
      'messaging.nats.stream': this.options.stream,
      'messaging.nats.stream_sequence': message.info.streamSequence,
      'messaging.nats.delivery_count': message.info.deliveryCount,
      'order_saga.event_type': message.headers?.get('Event-Type') ?? '',
      'order_saga.correlation_id': message.headers?.get('Correlation-Id') ?? '',
    };
    return inSpan(`process ${message.subject}`, { kind: SpanKind.CONSUMER, parent: contextFromCarrier(carrier), attributes }, async (span) => {
      const deadLettered = this.counts.deadLettered;
      await this.process(message);
      if (this.counts.deadLettered > deadLettered) span.setAttribute('order_saga.dead_lettered', true);
    });
  }

  private async process(message: JsMsg): Promise<void> {
    const { stream } = this.options;
    let envelope: EventEnvelope;
    try {
      envelope = message.json<EventEnvelope>();
      if (typeof envelope?.id !== 'string' || typeof envelope.type !== 'string') throw new Error('not an event envelope');
    } catch (error) {
      await this.deadLetter(message, { unparseable: message.string().slice(0, 10_000) }, `unparseable: ${String(error)}`);
      return;
    }
    const event: ConsumedEvent = { envelope, stream, streamSequence: message.info.streamSequence, deliveries: message.info.deliveryCount };
    // Earlier deliveries that were never acknowledged count as failed attempts (a process that crashed on it).
    let failures = message.info.deliveryCount - 1;
    for (let transientRetries = 0; ; ) {
      if (failures >= this.maxDeliveries) {
        await this.deadLetter(message, envelope, `delivered ${failures} times without being applied`, event);
        return;
      }
      try {
        await this.options.handle(event);
        message.ack();
        this.counts.applied++;
        this.logger.debug({ ...eventLogFields(envelope), streamSequence: event.streamSequence }, 'applied');
        return;
      } catch (error) {
        if (!this.running) return; // left unacknowledged: delivered again
        if (isTransientError(error)) {
          if (transientRetries++ % 10 === 0) this.logger.warn({ ...eventLogFields(envelope), err: error }, 'waits for a transient fault to pass');
        } else {
          failures++;
          this.logger.warn({ ...eventLogFields(envelope), err: error, attempt: failures, maxDeliveries: this.maxDeliveries }, 'failed to apply');
          if (failures >= this.maxDeliveries) {
            await this.deadLetter(message, envelope, String(error instanceof Error ? error.message : error), event);
            return;
          }
        }
        message.working();
        await sleep(Math.min(200 * 2 ** Math.min(failures + transientRetries, 5), 5_000));
      }
    }
  }

  private async deadLetter(message: JsMsg, event: DeadLetter['event'], reason: string, consumed?: ConsumedEvent): Promise<void> {
    const { nats, name, stream } = this.options;
    const letter: DeadLetter = {
      consumer: name,
      stream,
      streamSequence: message.info.streamSequence,
      deliveries: message.info.deliveryCount,
      reason,
      event,
      deadLetteredAt: new Date().toISOString(),
    };
    const id = 'id' in event ? event.id : `${stream}:${message.info.streamSequence}`;
    // Published (and acknowledged by JetStream) before the original is acknowledged: a crash in between only
    // dead-letters it again, and the broker drops that duplicate by its id.
    await jetstream(nats).publish(deadLetterSubject(name), JSON.stringify(letter), { msgID: `${name}:${id}` });
    if (consumed) await this.options.recordDeadLetter?.(consumed, reason);
    message.ack();
    this.counts.deadLettered++;
    const about = 'type' in event ? eventLogFields(event) : { eventId: id, eventType: 'unparseable' };
    this.logger.error({ ...about, streamSequence: message.info.streamSequence, deliveries: letter.deliveries, reason }, 'DEAD LETTER: the event was not applied');
  }
}

/** Durable consumers running together, stopped together. */
export interface RunningConsumers {
  consumers: DurableConsumer[];
  /** Stops each after the event in hand, and resolves once all have stopped. */
  stop(): Promise<void>;
}

export function runConsumers(consumers: DurableConsumer[]): RunningConsumers {
  const runs = consumers.map((consumer) => consumer.run());
  return {
    consumers,
    async stop() {
      for (const consumer of consumers) consumer.stop();
      await Promise.all(runs);
    },
  };
}

/**
 * Events a durable consumer has not handled yet: not delivered, plus delivered but not acknowledged; the whole
 * stream while the consumer does not exist yet.
 */
export async function consumerLag(nc: NatsConnection, stream: string, name: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  try {
    const info = await jsm.consumers.info(stream, name);
    return info.num_pending + info.num_ack_pending;
  } catch (error) {
    if (!/consumer not found/i.test(String(error)) && (error as { api_error?: { err_code?: number } }).api_error?.err_code !== 10014) throw error;
    return (await jsm.streams.info(stream)).state.messages;
  }
}

/** What the inbox needs of a database: a transaction with raw SQL (a SqlPool, src/events/sql-pool.ts, or a Prisma client). */
export interface InboxDb<Tx extends InboxTx> {
  $transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
}
export interface InboxTx {
  $executeRaw(query: TemplateStringsArray, ...values: unknown[]): Promise<number>;
}

/**
 * Applies an event at most once for `consumer`: records its id in the inbox and runs `effect` in the same
 * transaction. A second delivery finds the id and changes nothing. Answers whether the effect ran.
 */
export async function applyOnce<Tx extends InboxTx>(db: InboxDb<Tx>, consumer: string, event: ConsumedEvent, effect: (tx: Tx) => Promise<void>): Promise<boolean> {
  return db.$transaction(async (tx) => {
    const fresh = await recordInInbox(tx, consumer, event, null);
    if (fresh) await effect(tx);
    return fresh;
  });
}

/** Inserts the inbox row; false if the event was already there (applied or dead-lettered). */
export async function recordInInbox(tx: InboxTx, consumer: string, event: ConsumedEvent, deadLetter: string | null): Promise<boolean> {
  const inserted = await tx.$executeRaw`
    INSERT INTO inbox (consumer, event_id, stream, stream_sequence, event_type, dead_letter)
    VALUES (${consumer}, ${event.envelope.id}::uuid, ${event.stream}, ${event.streamSequence}, ${event.envelope.type}, ${deadLetter})
    ON CONFLICT (consumer, event_id) DO NOTHING`;
  return inserted === 1;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

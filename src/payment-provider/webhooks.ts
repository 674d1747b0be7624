// Delivery of the provider's webhooks to the merchant's callback URL, at least once:
// - each event is in the store before its first attempt, and its outcome is written after each attempt, so
//   a restarted provider carries on with every event not yet acknowledged;
// - a 2xx acknowledges; a 4xx other than 408, 425 and 429 is the receiver's final answer (logged, not
//   retried); anything else (network error, timeout, 5xx, 408/425/429, 3xx) is retried with exponential
//   backoff and jitter, for as long as it takes;
// - every attempt carries the same body, its HMAC-SHA256 in X-Signature and the event's id in X-Event-Id
//   (so the receiver can recognise a retry), plus the attempt number in X-Event-Attempt.
import { signCallback, SIGNATURE_HEADER } from '../activities/payments/provider';
import type { ProviderStore, WebhookEvent } from './store';

export const EVENT_ID_HEADER = 'x-event-id';
export const EVENT_ATTEMPT_HEADER = 'x-event-attempt';

export interface WebhookOptions {
  callbackUrl: string;
  secret: string;
  /** Per attempt; default 10 s. */
  timeoutMs?: number;
  /** Backoff before the 2nd attempt; doubles each time up to backoffMaxMs. Default 500 ms. */
  backoffBaseMs?: number;
  /** Default 30 s. */
  backoffMaxMs?: number;
  /** Attempts in flight at once; default 16. */
  concurrency?: number;
  log: (line: string) => void;
}

const FINAL_4XX_EXCEPTIONS = new Set([408, 425, 429]);

export class WebhookDispatcher {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly ready: string[] = [];
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(
    private readonly store: ProviderStore,
    private readonly options: WebhookOptions,
  ) {}

  /** Picks up every event not yet acknowledged (after a restart, at once). */
  start(): void {
    for (const event of this.store.events.values()) if (event.state === 'PENDING') this.schedule(event);
  }

  /** A new event, already in the store. */
  enqueue(event: WebhookEvent): void {
    this.schedule(event);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.ready.length = 0;
    this.abort.abort();
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private schedule(event: WebhookEvent): void {
    if (this.stopped) return;
    const existing = this.timers.get(event.id);
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.timers.delete(event.id);
      this.ready.push(event.id);
      this.pump();
    }, Math.max(0, event.nextAttemptAt - Date.now()));
    this.timers.set(event.id, timer);
  }

  private pump(): void {
    const concurrency = this.options.concurrency ?? 16;
    while (!this.stopped && this.inFlight.size < concurrency && this.ready.length > 0) {
      const id = this.ready.shift()!;
      if (this.inFlight.has(id)) continue;
      const attempt = this.attempt(id).finally(() => {
        this.inFlight.delete(id);
        this.pump();
      });
      this.inFlight.set(id, attempt);
    }
  }

  private async attempt(id: string): Promise<void> {
    const event = this.store.events.get(id);
    if (!event || event.state !== 'PENDING') return;
    const attemptNumber = event.attempts + 1;
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    let outcome: { kind: 'delivered' } | { kind: 'final'; error: string } | { kind: 'retry'; error: string };
    try {
      const response = await fetch(this.options.callbackUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'sandbox-payment-provider/1',
          [SIGNATURE_HEADER]: signCallback(this.options.secret, event.body),
          [EVENT_ID_HEADER]: event.id,
          [EVENT_ATTEMPT_HEADER]: String(attemptNumber),
        },
        body: event.body,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.abort.signal]),
      });
      const text = await response.text().catch(() => '');
      if (response.status >= 200 && response.status < 300) outcome = { kind: 'delivered' };
      else if (response.status >= 400 && response.status < 500 && !FINAL_4XX_EXCEPTIONS.has(response.status)) {
        outcome = { kind: 'final', error: `HTTP ${response.status} ${text.slice(0, 300)}` };
      } else outcome = { kind: 'retry', error: `HTTP ${response.status} ${text.slice(0, 300)}` };
    } catch (error: any) {
      if (this.stopped) return; // aborted by stop(): the event stays PENDING on disk and is sent after the restart
      const detail = error?.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (error?.cause?.code ?? error?.cause?.message ?? error?.message ?? String(error));
      outcome = { kind: 'retry', error: detail };
    }
    if (this.stopped) return;

    const now = Date.now();
    const updated: WebhookEvent = { ...event, attempts: attemptNumber };
    if (outcome.kind === 'delivered') {
      updated.state = 'DELIVERED';
      updated.deliveredAt = new Date(now).toISOString();
      delete updated.lastError;
    } else if (outcome.kind === 'final') {
      updated.state = 'FAILED';
      updated.lastError = outcome.error;
      this.options.log(
        `payment-provider: webhook ${event.id} for ${event.providerRef} refused for good by ${this.options.callbackUrl}: ${outcome.error}`,
      );
    } else {
      updated.lastError = outcome.error;
      updated.nextAttemptAt = now + this.backoff(attemptNumber);
      // One line on the first failure and then on every 10th, so an outage of the receiver is visible but not noisy.
      if (attemptNumber === 1 || attemptNumber % 10 === 0) {
        this.options.log(
          `payment-provider: webhook ${event.id} for ${event.providerRef} not acknowledged by ${this.options.callbackUrl} ` +
            `(attempt ${attemptNumber}: ${outcome.error}); retrying with backoff`,
        );
      }
    }
    try {
      await this.store.exclusive(() => this.store.commit([{ kind: 'event', value: updated }]));
    } catch (error: any) {
      if (this.stopped) return;
      // Could not record the attempt: keep the event as it was and try again later (at least once, never lost).
      this.options.log(`payment-provider: could not record webhook ${event.id}: ${error?.message ?? error}`);
      this.schedule({ ...event, nextAttemptAt: now + this.backoff(attemptNumber) });
      return;
    }
    if (updated.state === 'PENDING') this.schedule(updated);
  }

  private backoff(attempt: number): number {
    const base = this.options.backoffBaseMs ?? 500;
    const max = this.options.backoffMaxMs ?? 30_000;
    const delay = Math.min(max, base * 2 ** Math.min(attempt - 1, 30));
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  }
}

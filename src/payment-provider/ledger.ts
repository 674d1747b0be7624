// The sandbox provider's business rules: the state machine of an authorization, its idempotency, the
// simulated bank's decisions, and the webhooks those decisions owe. Every change is written to the store
// (fsynced) before it is visible or answered.
//
//   PENDING ──decide CONFIRMED──▶ AUTHORIZED ──capture──▶ CAPTURED ──refund──▶ REFUNDED
//      │    └─decide DECLINED──▶ DECLINED         └──void──▶ VOIDED
//      └──void──▶ VOIDED           (unknown ref) ──void──▶ VOIDED tombstone
import { randomUUID } from 'node:crypto';
import type { PaymentCallback, ProviderAuthorization, ProviderStatus } from '../activities/payments/provider';
import type { ProviderStore, StoredAuthorization, WebhookEvent } from './store';

/** A refusal with its HTTP status; the HTTP layer turns it into `{ error: { code, message, status? } }`. */
export class LedgerError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: string,
    message: string,
    /** The authorization's current status, for a 409. */
    readonly status?: ProviderStatus,
  ) {
    super(message);
  }
}

export interface LedgerOptions {
  /** Delay before the sandbox bank confirms a new authorization; 'off': only POST .../decide decides. */
  confirmDelayMs: number | 'off';
  /** Called after a decision is on disk with the webhook it owes. */
  onWebhook: (event: WebhookEvent) => void;
  log: (line: string) => void;
  defaultCurrency?: string;
}

export interface AuthorizeInput {
  providerRef: string;
  orderId: string;
  amountCents: number;
  currency?: string;
}

export function publicRecord(stored: StoredAuthorization): ProviderAuthorization {
  const { decideAt: _decideAt, ...record } = stored;
  return record;
}

export class Ledger {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly store: ProviderStore,
    private readonly options: LedgerOptions,
  ) {}

  /**
   * Schedules the decisions still owed from before a restart (those overdue are made at once). With auto-confirm
   * on, a PENDING authorization created while it was off is confirmed after the delay too.
   */
  start(): void {
    const delay = this.options.confirmDelayMs;
    for (const record of this.store.authorizations.values()) {
      if (record.status !== 'PENDING') continue;
      if (record.decideAt !== undefined) this.scheduleDecision(record.providerRef, record.decideAt);
      else if (delay !== 'off') this.scheduleDecision(record.providerRef, Date.now() + delay);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  get(providerRef: string): ProviderAuthorization | undefined {
    const record = this.store.authorizations.get(providerRef);
    return record && publicRecord(record);
  }

  list(after: string | undefined, limit: number): { data: ProviderAuthorization[]; hasMore: boolean; nextAfter?: string } {
    const refs = [...this.store.authorizations.keys()].filter((ref) => after === undefined || ref > after).sort();
    const page = refs.slice(0, limit).map((ref) => publicRecord(this.store.authorizations.get(ref)!));
    const hasMore = refs.length > limit;
    return { data: page, hasMore, ...(hasMore ? { nextAfter: page[page.length - 1].providerRef } : {}) };
  }

  events(providerRef?: string): WebhookEvent[] {
    return [...this.store.events.values()]
      .filter((event) => providerRef === undefined || event.providerRef === providerRef)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /**
   * Creates a PENDING authorization, or returns the one this key already names. The same key with a
   * different order, amount or currency is a 409. A tombstone (a void that came first) is returned as it is:
   * the late authorization is refused, it never becomes PENDING.
   */
  authorize(input: AuthorizeInput): Promise<{ record: ProviderAuthorization; created: boolean }> {
    return this.store.exclusive(async () => {
      const currency = input.currency ?? this.options.defaultCurrency ?? 'USD';
      const existing = this.store.authorizations.get(input.providerRef);
      if (existing) {
        if (!existing.tombstone && (existing.orderId !== input.orderId || existing.amountCents !== input.amountCents || existing.currency !== currency)) {
          throw new LedgerError(
            409,
            'idempotency_key_reused',
            `idempotency key ${input.providerRef} was used for order ${existing.orderId}, ${existing.amountCents} ${existing.currency}; ` +
              `this request is for order ${input.orderId}, ${input.amountCents} ${currency}`,
            existing.status,
          );
        }
        return { record: publicRecord(existing), created: false };
      }
      const now = Date.now();
      const delay = this.options.confirmDelayMs;
      const record: StoredAuthorization = {
        providerRef: input.providerRef,
        orderId: input.orderId,
        amountCents: input.amountCents,
        currency,
        status: 'PENDING',
        tombstone: false,
        createdAt: new Date(now).toISOString(),
        updatedAt: new Date(now).toISOString(),
        ...(delay === 'off' ? {} : { decideAt: now + delay }),
      };
      await this.store.commit([{ kind: 'authorization', value: record }]);
      if (record.decideAt !== undefined) this.scheduleDecision(record.providerRef, record.decideAt);
      return { record: publicRecord(record), created: true };
    });
  }

  /** The bank's answer to a PENDING authorization (the sandbox's timer, or a test via POST .../decide). */
  decide(providerRef: string, outcome: 'CONFIRMED' | 'DECLINED', reason?: string): Promise<ProviderAuthorization> {
    return this.store.exclusive(async () => {
      const existing = this.mustExist(providerRef);
      const target: ProviderStatus = outcome === 'CONFIRMED' ? 'AUTHORIZED' : 'DECLINED';
      if (existing.status !== 'PENDING') {
        const alreadyThat = outcome === 'CONFIRMED' ? ['AUTHORIZED', 'CAPTURED', 'REFUNDED'].includes(existing.status) : existing.status === 'DECLINED';
        if (alreadyThat && !existing.tombstone) return publicRecord(existing);
        throw this.conflict(existing, `decide ${outcome}`);
      }
      const now = new Date().toISOString();
      const { decideAt: _decided, ...rest } = existing;
      const record: StoredAuthorization = { ...rest, status: target, updatedAt: now, ...(outcome === 'DECLINED' ? { declineReason: reason ?? 'declined by the issuer' } : {}) };
      const callback: PaymentCallback = {
        orderId: existing.orderId!,
        providerRef,
        outcome,
        ...(outcome === 'DECLINED' ? { reason: record.declineReason } : {}),
      };
      const event: WebhookEvent = {
        id: `evt_${randomUUID()}`,
        providerRef,
        body: JSON.stringify(callback),
        state: 'PENDING',
        attempts: 0,
        nextAttemptAt: Date.now(),
        createdAt: now,
      };
      await this.store.commit([
        { kind: 'authorization', value: record },
        { kind: 'event', value: event },
      ]);
      this.cancelDecision(providerRef);
      this.options.onWebhook(event);
      return publicRecord(record);
    });
  }

  capture(providerRef: string): Promise<ProviderAuthorization> {
    return this.transition(providerRef, 'capture', { AUTHORIZED: 'CAPTURED', CAPTURED: 'CAPTURED' });
  }

  refund(providerRef: string): Promise<ProviderAuthorization> {
    return this.transition(providerRef, 'refund', { CAPTURED: 'REFUNDED', REFUNDED: 'REFUNDED' });
  }

  /**
   * Releases an authorization. An unknown reference gets a VOIDED tombstone, so that an authorization still on
   * its way is refused when it arrives. A DECLINED one holds nothing and is returned unchanged.
   */
  void(providerRef: string, orderId?: string): Promise<ProviderAuthorization> {
    return this.store.exclusive(async () => {
      if (!this.store.authorizations.has(providerRef)) {
        const now = new Date().toISOString();
        const tombstone: StoredAuthorization = {
          providerRef,
          orderId: orderId ?? null,
          amountCents: 0,
          currency: this.options.defaultCurrency ?? 'USD',
          status: 'VOIDED',
          tombstone: true,
          createdAt: now,
          updatedAt: now,
        };
        await this.store.commit([{ kind: 'authorization', value: tombstone }]);
        return publicRecord(tombstone);
      }
      return this.apply(providerRef, 'void', { PENDING: 'VOIDED', AUTHORIZED: 'VOIDED', VOIDED: 'VOIDED', DECLINED: 'DECLINED' });
    });
  }

  private transition(providerRef: string, action: string, allowed: Partial<Record<ProviderStatus, ProviderStatus>>): Promise<ProviderAuthorization> {
    return this.store.exclusive(() => this.apply(providerRef, action, allowed));
  }

  /** Inside exclusive(): moves the record along `allowed`, or refuses with a 404 / 409. */
  private async apply(providerRef: string, action: string, allowed: Partial<Record<ProviderStatus, ProviderStatus>>): Promise<ProviderAuthorization> {
    const existing = this.mustExist(providerRef);
    const target = allowed[existing.status];
    if (target === undefined) throw this.conflict(existing, action);
    if (target === existing.status) return publicRecord(existing);
    const { decideAt: _decided, ...rest } = existing;
    const record: StoredAuthorization = { ...rest, status: target, updatedAt: new Date().toISOString() };
    await this.store.commit([{ kind: 'authorization', value: record }]);
    this.cancelDecision(providerRef);
    return publicRecord(record);
  }

  private mustExist(providerRef: string): StoredAuthorization {
    const existing = this.store.authorizations.get(providerRef);
    if (!existing) throw new LedgerError(404, 'not_found', `no authorization ${providerRef}`);
    return existing;
  }

  private conflict(existing: StoredAuthorization, action: string): LedgerError {
    const what = existing.tombstone ? 'VOIDED before it was authorized' : existing.status;
    return new LedgerError(409, 'invalid_transition', `cannot ${action} authorization ${existing.providerRef}: it is ${what}`, existing.status);
  }

  private scheduleDecision(providerRef: string, decideAt: number): void {
    if (this.stopped) return;
    this.cancelDecision(providerRef);
    const timer = setTimeout(() => {
      this.timers.delete(providerRef);
      if (this.stopped) return;
      const record = this.store.authorizations.get(providerRef);
      if (record?.status !== 'PENDING') return;
      this.decide(providerRef, 'CONFIRMED').catch((error) => {
        if (this.stopped) return;
        // The store failed to write: try again shortly; the decision is still owed (and survives a restart).
        this.options.log(`payment-provider: could not confirm ${providerRef}: ${error?.message ?? error}; retrying`);
        this.scheduleDecision(providerRef, Date.now() + 1_000);
      });
    }, Math.max(0, decideAt - Date.now()));
    this.timers.set(providerRef, timer);
  }

  private cancelDecision(providerRef: string): void {
    const timer = this.timers.get(providerRef);
    if (timer) clearTimeout(timer);
    this.timers.delete(providerRef);
  }
}

// The payment provider (PSP) as the payments service sees it: an external HTTP service, like Stripe or Adyen,
// with its own durable state. Every call is keyed by the payment's providerRef, so asking twice is safe:
//
//   authorize → PENDING ─(the bank decides)─▶ AUTHORIZED ─▶ CAPTURED ─▶ REFUNDED
//                       └──────────────────▶ DECLINED    └─▶ VOIDED
//
// The provider tells us its decision through a signed webhook to POST /payments/callback (HMAC-SHA256 of the
// raw body, hex, in X-Signature), which it retries until we acknowledge it; we can also ask it with get().
// A void of a reference the provider has never seen records a VOIDED tombstone, so that an authorization
// still in flight for it is refused when it arrives.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type ProviderStatus = 'PENDING' | 'AUTHORIZED' | 'DECLINED' | 'CAPTURED' | 'VOIDED' | 'REFUNDED';
export const PROVIDER_STATUSES: readonly ProviderStatus[] = ['PENDING', 'AUTHORIZED', 'DECLINED', 'CAPTURED', 'VOIDED', 'REFUNDED'];

/** The provider's record of one authorization, as its API returns it. */
export interface ProviderAuthorization {
  providerRef: string;
  /** null for a tombstone whose void did not name the order. */
  orderId: string | null;
  /** 0 for a tombstone. */
  amountCents: number;
  currency: string;
  status: ProviderStatus;
  /** A void that came before any authorization under this key: a later authorize is answered with it. */
  tombstone: boolean;
  /** Set when status is DECLINED. */
  declineReason?: string;
  createdAt: string;
  updatedAt: string;
}

export interface AuthorizeRequest {
  providerRef: string;
  orderId: string;
  amountCents: number;
  /** ISO 4217 code; the provider's default (USD) when omitted. */
  currency?: string;
}

export interface AuthorizationPage {
  data: ProviderAuthorization[];
  hasMore: boolean;
  /** Pass as `after` to read the next page; absent on the last page. */
  nextAfter?: string;
}

export interface PaymentProvider {
  /** Starts an authorization (PENDING until the bank decides). Idempotent by providerRef: a replay returns the record as it is now. */
  authorize(request: AuthorizeRequest): Promise<ProviderAuthorization>;
  /** The provider's record, or undefined if it has never heard of this reference. */
  get(providerRef: string): Promise<ProviderAuthorization | undefined>;
  /** AUTHORIZED → CAPTURED; idempotent. A ProviderConflictError from any other state. */
  capture(providerRef: string): Promise<ProviderAuthorization>;
  /** PENDING/AUTHORIZED → VOIDED; unknown → VOIDED tombstone; VOIDED and DECLINED unchanged. A ProviderConflictError once captured. */
  void(providerRef: string, options?: { orderId?: string }): Promise<ProviderAuthorization>;
  /** CAPTURED → REFUNDED; idempotent. A ProviderConflictError from any other state. */
  refund(providerRef: string): Promise<ProviderAuthorization>;
  /** Every record, ordered by providerRef, a page at a time (for reconciliation). */
  list(options?: { after?: string; limit?: number }): Promise<AuthorizationPage>;
}

/** The provider refused a call in the state the authorization is in (HTTP 409), e.g. capturing a VOIDED one. */
export class ProviderConflictError extends Error {
  override readonly name = 'ProviderConflictError';
  constructor(
    message: string,
    /** `invalid_transition` or `idempotency_key_reused`. */
    readonly code: string,
    /** The authorization's status at the provider when it refused, when it said. */
    readonly currentStatus: ProviderStatus | undefined,
  ) {
    super(message);
  }
}

/** The provider does not know the reference (HTTP 404) on a call that needs an existing authorization. */
export class ProviderNotFoundError extends Error {
  override readonly name = 'ProviderNotFoundError';
}

/**
 * Any other refusal by the provider (400, 401, 403…): a bug or a misconfiguration (wrong API key). Thrown as a
 * plain, retryable error: the activity keeps retrying, loudly, until the configuration is fixed.
 */
export class ProviderRequestError extends Error {
  override readonly name = 'ProviderRequestError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** Reads every record, page by page. */
export async function listAllAuthorizations(provider: Pick<PaymentProvider, 'list'>, pageSize = 500): Promise<ProviderAuthorization[]> {
  const all: ProviderAuthorization[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await provider.list({ after, limit: pageSize });
    all.push(...page.data);
    if (!page.hasMore || !page.nextAfter) return all;
    after = page.nextAfter;
  }
}

export interface HttpPaymentProviderOptions {
  /** Base URL of the provider's API, e.g. http://127.0.0.1:3100 */
  url: string;
  apiKey: string;
  /** Per request; default 5000 ms (well inside an activity's start-to-close timeout). */
  timeoutMs?: number;
}

/** The provider's HTTP API client. Network errors, timeouts and 5xx are plain (retryable) Errors. */
export function httpPaymentProvider(options: HttpPaymentProviderOptions): PaymentProvider {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 5_000;

  async function call(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
    const what = `${method} ${path}`;
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.apiKey}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error: any) {
      if (error?.name === 'TimeoutError') throw new Error(`payment provider at ${base} did not answer ${what} within ${timeoutMs} ms`);
      const cause = error?.cause?.code ?? error?.cause?.message ?? error?.message ?? String(error);
      throw new Error(`payment provider at ${base} is unreachable (${what}): ${cause}`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error: any) {
      throw new Error(`payment provider at ${base} broke off its answer to ${what}: ${error?.message ?? error}`);
    }
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (response.status >= 500 || json === undefined) {
      throw new Error(`payment provider at ${base} answered ${what} with HTTP ${response.status}: ${text.slice(0, 200) || '(empty body)'}`);
    }
    return { status: response.status, json };
  }

  function refusal(what: string, status: number, json: any): Error {
    const code: string | undefined = json?.error?.code;
    const message = `payment provider refused ${what}: ${json?.error?.message ?? `HTTP ${status}`}`;
    if (status === 409) return new ProviderConflictError(message, code ?? 'conflict', json?.error?.status);
    if (status === 404) return new ProviderNotFoundError(message);
    return new ProviderRequestError(message, status, code);
  }

  async function record(method: 'GET' | 'POST', path: string, body?: unknown, headers?: Record<string, string>): Promise<ProviderAuthorization> {
    const { status, json } = await call(method, path, body, headers);
    if (status >= 200 && status < 300) return json as ProviderAuthorization;
    throw refusal(`${method} ${path}`, status, json);
  }

  const ref = (providerRef: string) => `/v1/authorizations/${encodeURIComponent(providerRef)}`;

  return {
    authorize(request) {
      return record('POST', '/v1/authorizations', request, { 'idempotency-key': request.providerRef });
    },
    async get(providerRef) {
      try {
        return await record('GET', ref(providerRef));
      } catch (error) {
        if (error instanceof ProviderNotFoundError) return undefined;
        throw error;
      }
    },
    capture(providerRef) {
      return record('POST', `${ref(providerRef)}/capture`, {}, { 'idempotency-key': `${providerRef}:capture` });
    },
    void(providerRef, voidOptions) {
      return record('POST', `${ref(providerRef)}/void`, voidOptions?.orderId ? { orderId: voidOptions.orderId } : {}, {
        'idempotency-key': `${providerRef}:void`,
      });
    },
    refund(providerRef) {
      return record('POST', `${ref(providerRef)}/refund`, {}, { 'idempotency-key': `${providerRef}:refund` });
    },
    async list(listOptions = {}) {
      const query = new URLSearchParams();
      if (listOptions.after !== undefined) query.set('after', listOptions.after);
      if (listOptions.limit !== undefined) query.set('limit', String(listOptions.limit));
      const search = query.toString();
      const path = `/v1/authorizations${search ? `?${search}` : ''}`;
      const { status, json } = await call('GET', path);
      if (status >= 200 && status < 300) return json as AuthorizationPage;
      throw refusal(`GET ${path}`, status, json);
    },
  };
}

/** What the provider's webhook posts to POST /payments/callback. */
export interface PaymentCallback {
  orderId: string;
  providerRef: string;
  outcome: 'CONFIRMED' | 'DECLINED';
  reason?: string;
}

export const SIGNATURE_HEADER = 'x-signature';

/** HMAC-SHA256 of the raw callback body, hex encoded, as the provider sends it in X-Signature. */
export function signCallback(secret: string, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(rawBody).digest('hex');
}

export function isValidSignature(secret: string, rawBody: Buffer, signature: string | undefined): boolean {
  if (!signature || !/^[0-9a-f]{64}$/i.test(signature)) return false;
  const expected = Buffer.from(signCallback(secret, rawBody), 'hex');
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}

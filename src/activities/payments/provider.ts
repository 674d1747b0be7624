// The payment provider confirms an authorization asynchronously: it calls our callback endpoint
// (POST /payments/callback) later, signed with the shared webhook secret. The saga waits for that call.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface ConfirmationRequest {
  orderId: string;
  providerRef: string;
  amountCents: number;
}

export interface PaymentCallback {
  orderId: string;
  providerRef: string;
  outcome: 'CONFIRMED' | 'DECLINED';
  reason?: string;
}

export interface PaymentProvider {
  /** Asks the provider to confirm an authorization. May be called more than once for the same providerRef. */
  requestConfirmation(request: ConfirmationRequest): Promise<void>;
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

/** A real provider is called from outside this system; here there is nothing to send, its callback is awaited. */
export const externalProvider: PaymentProvider = {
  async requestConfirmation() {},
};

/**
 * A stand-in provider for running the system on its own: it confirms every authorization after a delay by
 * calling the callback URL, signed like the real one would be. Each providerRef is confirmed once per process.
 */
export function sandboxProvider(options: { callbackUrl: string; secret: string; delayMs: number; log?: (line: string) => void }): PaymentProvider {
  const pending = new Set<string>();
  const log = options.log ?? ((line: string) => console.log(line));
  async function deliver(callback: PaymentCallback): Promise<void> {
    const body = JSON.stringify(callback);
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        const response = await fetch(options.callbackUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signCallback(options.secret, body) },
          body,
          signal: AbortSignal.timeout(5_000),
        });
        if (response.ok || (response.status >= 400 && response.status < 500 && response.status !== 429)) return;
      } catch {
        // The API may be restarting: try again below.
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000 * attempt));
    }
    log(`sandbox payment provider: could not deliver the confirmation of ${callback.providerRef}; the saga's confirmation deadline will reject the order`);
  }
  return {
    async requestConfirmation(request) {
      if (pending.has(request.providerRef)) return;
      pending.add(request.providerRef);
      setTimeout(() => {
        void deliver({ orderId: request.orderId, providerRef: request.providerRef, outcome: 'CONFIRMED' }).finally(() =>
          pending.delete(request.providerRef),
        );
      }, options.delayMs).unref();
    },
  };
}

export function providerFromConfig(payments: {
  provider: 'sandbox' | 'external';
  callbackUrl: string;
  webhookSecret: string;
  sandboxConfirmDelayMs: number;
}): PaymentProvider {
  return payments.provider === 'sandbox'
    ? sandboxProvider({ callbackUrl: payments.callbackUrl, secret: payments.webhookSecret, delayMs: payments.sandboxConfirmDelayMs })
    : externalProvider;
}

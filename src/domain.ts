// The vocabulary every part of the system shares: order lines and the business refusals that end a saga.
// Kept free of Node APIs so that workflow code can import it.

export interface OrderLine {
  sku: string;
  quantity: number;
}

export interface PricedLine extends OrderLine {
  unitPriceCents: number;
}

/**
 * Business refusals: the saga compensates and ends REJECTED. Activities raise them as non-retryable
 * ApplicationFailures with one of these types; the workflow raises the ones that are its own decisions.
 */
export const Refusal = {
  UnknownSku: 'UnknownSku',
  OutOfStock: 'OutOfStock',
  UnknownCustomer: 'UnknownCustomer',
  PaymentDeclined: 'PaymentDeclined',
  ShipmentRefused: 'ShipmentRefused',
  ApprovalRejected: 'ApprovalRejected',
  ApprovalTimedOut: 'ApprovalTimedOut',
  PaymentConfirmationTimedOut: 'PaymentConfirmationTimedOut',
  OrderTooLarge: 'OrderTooLarge',
} as const;
export type RefusalType = (typeof Refusal)[keyof typeof Refusal];

/**
 * The largest order total the system takes, in cents. Amounts are stored in 32-bit integer columns; this bound
 * keeps every total, and every credit sum checked against a limit, far from their overflow. The API refuses a
 * bigger order with a 400 naming `lines`; pricing refuses it too (prices can change after the API checked).
 */
export const MAX_ORDER_TOTAL_CENTS = 1_000_000_000;

export function totalCents(lines: PricedLine[]): number {
  return lines.reduce((sum, line) => sum + line.quantity * line.unitPriceCents, 0);
}

/** The reference under which the payment provider knows an order's payment. */
export function providerRefFor(orderId: string): string {
  return `pay_${orderId}`;
}

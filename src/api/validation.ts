// Request schemas. Every refusal names the offending field, e.g. `lines[1].quantity`.
import { z } from 'zod';
import { decodeCursor, ORDER_STATUSES } from '../query/read';
import { badRequest, type FieldError } from './errors';

const id = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(64, `${what} must be at most 64 characters`)
    .regex(/^[A-Za-z0-9._-]+$/, `${what} may contain only letters, digits, '.', '_' and '-'`)
    // `.` and `..` are no id in a URL path (they resolve away): the services' read APIs could not be asked about one.
    .regex(/[^.]/, `${what} must not be made of dots only`);

export const MAX_LINES = 50;
export const MAX_QUANTITY = 1_000;

export const placeOrderSchema = z.strictObject(
  {
    customerId: id('customerId'),
    lines: z
      .array(
        z.strictObject(
          {
            sku: id('sku'),
            quantity: z
              .number({ error: 'quantity must be a number' })
              .int('quantity must be a whole number')
              .min(1, 'quantity must be at least 1')
              .max(MAX_QUANTITY, `quantity must be at most ${MAX_QUANTITY}`),
          },
          { error: 'each line must be an object with sku and quantity' },
        ),
        { error: 'lines must be an array' },
      )
      .min(1, 'an order needs at least one line')
      .max(MAX_LINES, `an order has at most ${MAX_LINES} lines`)
      .superRefine((lines, ctx) => {
        const seen = new Set<string>();
        lines.forEach((line, index) => {
          if (seen.has(line.sku)) ctx.addIssue({ code: 'custom', path: [index, 'sku'], message: `duplicate SKU ${line.sku}: put the whole quantity on one line` });
          seen.add(line.sku);
        });
      }),
  },
  { error: 'the body must be a JSON object' },
);
export type PlaceOrderRequest = z.infer<typeof placeOrderSchema>;

/** Text the saga records in PostgreSQL, which cannot store a NUL character: refused here, or the saga would be stuck. */
const text = (what: string) => z.string({ error: `${what} must be a string` }).regex(/^[^\u0000]*$/, `${what} must not contain NUL characters`);

const person = (what: string) =>
  z.string({ error: `${what} must be a string` }).trim().min(1, `${what} must not be empty`).max(100, `${what} must be at most 100 characters`);
const note = text('note').max(500, 'note must be at most 500 characters').optional();

/** The manager is the caller; `manager`, if sent, must name them (it is recorded from the API key). */
export const managerDecisionSchema = z.strictObject({ manager: person('manager').optional(), note }, { error: 'the body must be a JSON object' });

/** An operator's decision for a saga in NEEDS_ATTENTION; `operator`, if sent, must name the caller. */
export const resolveAttentionSchema = z.strictObject(
  {
    action: z.enum(['retry', 'resolved-manually', 'abort'], { error: 'action must be retry, resolved-manually or abort' }),
    operator: person('operator').optional(),
    note,
  },
  { error: 'the body must be a JSON object' },
);

export const cancelSchema = z.strictObject(
  { reason: text('reason').trim().min(1, 'reason must not be empty').max(500, 'reason must be at most 500 characters').optional() },
  { error: 'the body must be a JSON object' },
);

export const paymentCallbackSchema = z.strictObject(
  {
    orderId: id('orderId'),
    providerRef: text('providerRef').min(1).max(100),
    outcome: z.enum(['CONFIRMED', 'DECLINED'], { error: 'outcome must be CONFIRMED or DECLINED' }),
    reason: text('reason').max(500).optional(),
  },
  { error: 'the body must be a JSON object' },
);

export const orderIdSchema = id('orderId');
export const skuSchema = id('sku');
export const customerIdSchema = id('customerId');
export const idempotencyKeySchema = z
  .string()
  .min(1, 'Idempotency-Key must not be empty')
  .max(255, 'Idempotency-Key must be at most 255 characters')
  .regex(/^[\x21-\x7e]+$/, 'Idempotency-Key must be printable ASCII without spaces');
/**
 * A number in the query string. A blank one (`?wait=`) is refused as not a number: z.coerce alone would read it as 0,
 * which JSON Schema (the OpenAPI document) cannot say.
 */
function queryNumber<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => (typeof value === 'string' && value.trim() === '' ? undefined : value), schema);
}

export const waitSchema = queryNumber(
  z.coerce
    .number({ error: 'wait must be a number of seconds' })
    .min(0, 'wait must be between 0 and 60 seconds')
    .max(60, 'wait must be between 0 and 60 seconds'),
);

/** What `wait` waits for: the saga's end (the default), or its decision (accepted, refused, or waiting for a person). */
export const untilSchema = z.enum(['end', 'decision'], { error: 'until must be end or decision' });

const timestamp = (what: string) =>
  z.iso.datetime({ offset: true, error: `${what} must be an ISO 8601 date-time, e.g. 2026-12-03T10:00:00Z` }).transform((value) => new Date(value));

/** A cursor as a page writes it; a forged one (a date PostgreSQL cannot hold, a malformed id) is a 400, not a 500. */
function isPagePosition(cursor: string): boolean {
  const position = decodeCursor(cursor);
  if (!position) return false;
  const year = position.createdAt.getUTCFullYear();
  return year >= 1 && year <= 9999 && id('orderId').safeParse(position.orderId).success;
}

/** GET /orders: filters and paging, all optional. */
export const listOrdersSchema = z.strictObject(
  {
    status: z.enum(ORDER_STATUSES, { error: `status must be one of ${ORDER_STATUSES.join(', ')}` }).optional(),
    customerId: id('customerId').optional(),
    from: timestamp('from').optional(),
    to: timestamp('to').optional(),
    cursor: z
      .string({ error: 'cursor must be a string' })
      .refine(isPagePosition, 'cursor must be the nextCursor of a previous page')
      .optional(),
    limit: queryNumber(
      z.coerce
        .number({ error: 'limit must be a number' })
        .int('limit must be a whole number')
        .min(1, 'limit must be between 1 and 100')
        .max(100, 'limit must be between 1 and 100'),
    ).default(20),
  },
  { error: 'unknown query parameter' },
);

function fieldName(path: PropertyKey[], root?: string): string {
  let name = root ?? '';
  for (const part of path) name += typeof part === 'number' ? `[${part}]` : name ? `.${String(part)}` : String(part);
  return name || 'body';
}

/** Parses or throws a 400 that lists every offending field. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, root?: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields: FieldError[] = result.error.issues.map((issue) => ({ field: fieldName(issue.path, root), message: issue.message }));
  throw badRequest(fields.map((f) => `${f.field}: ${f.message}`).join('; '), fields);
}

import { ApplicationFailure } from '@temporalio/activity';
import type { RefusalType } from '../domain';

/** A business refusal: not retried, the saga compensates and the order ends REJECTED. */
export function refuse(type: RefusalType, message: string, details?: Record<string, unknown>): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details: details ? [details] : undefined });
}

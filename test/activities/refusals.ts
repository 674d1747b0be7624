// Shared by the activity tests: how a business refusal must look to Temporal (non-retryable, typed).
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';

/** Awaits a call that must fail with a non-retryable ApplicationFailure of the given type, and returns that failure. */
export async function assertNonRetryable(call: Promise<unknown>, type: string): Promise<ApplicationFailure> {
  const error = await call.then(
    (value) => assert.fail(`expected a non-retryable ${type} failure, but the call returned ${JSON.stringify(value)}`),
    (error: unknown) => error,
  );
  assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure of type ${type}, got: ${String(error)}`);
  assert.equal(error.type, type);
  assert.equal(error.nonRetryable, true, `${type} must be non-retryable`);
  return error;
}

/** Runs the same call `times` times at once, as duplicated or overlapping activity attempts would. */
export function concurrently<T>(times: number, call: () => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: times }, call));
}

// Polls a check until it passes, or fails the test naming what it waited for.
import assert from 'node:assert/strict';

export async function waitUntil(check: () => Promise<boolean>, what: string, { timeoutMs = 30_000, intervalMs = 100 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// A compensation stack for sagas. Register the undo of a step *before* running the step: a step that times
// out may still have committed, and its compensation must then run too. Compensations must be idempotent.
import { CancellationScope, log } from '@temporalio/workflow';

interface Compensation {
  name: string;
  run: () => Promise<unknown>;
}

export class Compensations {
  private readonly stack: Compensation[] = [];

  add(name: string, run: () => Promise<unknown>): void {
    this.stack.push({ name, run });
  }

  /**
   * Runs every registered compensation, last registered first, shielded from cancellation. A compensation
   * that fails for good does not stop the others; its error is rethrown at the end, never swallowed.
   */
  async runAll(onCompensated: (name: string) => void): Promise<void> {
    const failures: unknown[] = [];
    await CancellationScope.nonCancellable(async () => {
      while (this.stack.length > 0) {
        const compensation = this.stack.pop()!;
        try {
          await compensation.run();
          onCompensated(compensation.name);
        } catch (error) {
          log.error('compensation failed', { compensation: compensation.name, error: String(error) });
          failures.push(error);
        }
      }
    });
    if (failures.length > 0) throw failures[0];
  }
}

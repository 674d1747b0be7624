// A compensation stack for sagas. Register the undo of a step *before* running the step: a step that times
// out may still have committed, and its compensation must then run too. Compensations must be idempotent.
import { CancellationScope } from '@temporalio/workflow';

interface Compensation {
  /** What the saga records once it has run, e.g. STOCK_RELEASED. */
  name: string;
  /** The activity that does it, e.g. releaseStock (named when it fails). */
  activity: string;
  run: () => Promise<unknown>;
}

/** How a compensation was done: by its activity, or by an operator's hand after the activity failed for good. */
export type CompensationOutcome = 'ran' | 'resolved-manually';

export interface CompensationHooks {
  onDone(name: string, how: CompensationOutcome): void;
  /**
   * A compensation failed for good (a non-retryable error: transient faults are retried by its activity's
   * retry policy and never reach here). Resolves when an operator has decided: run it again, or it was done
   * by hand. Until then the compensation stays on the stack, with everything under it.
   */
  onStuck(activity: string, error: unknown): Promise<'retry' | 'resolved-manually'>;
}

export class Compensations {
  private readonly stack: Compensation[] = [];

  add(name: string, activity: string, run: () => Promise<unknown>): void {
    this.stack.push({ name, activity, run });
  }

  /** The names of the compensations not run yet, the next one to run first. */
  pending(): string[] {
    return this.stack.map((compensation) => compensation.name).reverse();
  }

  /**
   * Runs every registered compensation, last registered first, shielded from cancellation. A compensation
   * leaves the stack only once it is done; one that fails for good waits there for an operator (onStuck), so
   * nothing is skipped, swallowed or forgotten.
   */
  async runAll(hooks: CompensationHooks): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      while (this.stack.length > 0) {
        const next = this.stack[this.stack.length - 1];
        try {
          await next.run();
          this.stack.pop();
          hooks.onDone(next.name, 'ran');
        } catch (error) {
          if ((await hooks.onStuck(next.activity, error)) === 'resolved-manually') {
            this.stack.pop();
            hooks.onDone(next.name, 'resolved-manually');
          }
        }
      }
    });
  }
}

// How a long-running process (the API, the relay, the projector) stops on SIGINT or SIGTERM: its own stop runs
// once, then the process exits 0. A stop that fails (a connection that will not close) is logged and exits 1, instead
// of leaving an unhandled rejection to end the process with a stack trace and no word of what it was doing.
import type { Logger } from 'pino';

export function stopOnSignals(stop: () => Promise<unknown>, logger: Pick<Logger, 'error'>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error, signal }, `could not stop cleanly on ${signal}: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

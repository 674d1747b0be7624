// How a long-running process (the API, the relay, the projector, the payment provider) stops on SIGINT or SIGTERM:
// its own stop runs once, then the process exits 0. A stop that fails (a connection that will not close) is logged
// and exits 1, instead of leaving an unhandled rejection to end the process with a stack trace and no word of what
// it was doing.

/** Where a failed stop is told: a pino logger, or anything with the same `error(fields, message)`. */
export interface StopErrorLog {
  error(fields: { err: unknown; signal: NodeJS.Signals }, message: string): void;
}

export function stopOnSignals(stop: (signal: NodeJS.Signals) => Promise<unknown>, logger: StopErrorLog): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop(signal).then(
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

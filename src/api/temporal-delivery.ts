// Did a write reach Temporal? A start, update or signal that fails with a timeout may have been applied by the
// server even though its answer was lost; only when no attempt of the call ever got onto a connection is it
// certain that nothing happened. This gRPC interceptor watches every attempt of a tracked call (the SDK's retry
// interceptor sits outside it and may make several), and tells which ones certainly never left the client:
//   - UNAVAILABLE "No connection established" (connection refused, name not resolved): the load balancer had
//     no connection to give the call;
//   - DEADLINE_EXCEEDED raised by this client (grpc-js's "Deadline exceeded…") before the call had a stream on a
//     connection (its details then carry no `remote_addr=`: the call was still waiting for a connection, name
//     resolution or its metadata).
// Everything else counts as "may have arrived": a deadline hit while the server had the request, a
// DEADLINE_EXCEEDED the server itself answered (Temporal ends a long-polled update a little before the caller's
// deadline, with its own message: the request certainly arrived), and a call cancelled by the client.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';

const CALL_ID_HEADER = 'x-order-api-call-id';

interface Delivery {
  attempts: number;
  unsent: number;
}

const deliveries = new Map<string, Delivery>();

/** Whether an attempt that ended with `status` certainly never reached the server. */
export function certainlyUnsent(status: Pick<grpc.StatusObject, 'code' | 'details'>): boolean {
  const details = status.details ?? '';
  if (status.code === grpc.status.UNAVAILABLE) return /(^|: )No connection established/.test(details);
  if (status.code === grpc.status.DEADLINE_EXCEEDED) return /^Deadline exceeded/.test(details) && !details.includes('remote_addr=');
  return false;
}

const deliveryInterceptor: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      const id = metadata.get(CALL_ID_HEADER)[0];
      const delivery = typeof id === 'string' ? deliveries.get(id) : undefined;
      if (!delivery) return next(metadata, listener);
      // The header is ours alone: the server never sees it. (A copy: the retry interceptor resends the original.)
      const forwarded = metadata.clone();
      forwarded.remove(CALL_ID_HEADER);
      delivery.attempts++;
      next(forwarded, {
        onReceiveStatus(status, nextStatus) {
          if (certainlyUnsent(status)) delivery.unsent++;
          nextStatus(status);
        },
      });
    },
  });

/** The gRPC interceptors of the API's Temporal connection: the SDK's default retries, then delivery tracking. */
export function apiConnectionInterceptors(): grpc.Interceptor[] {
  return [makeGrpcRetryInterceptor(defaultGrpcRetryOptions()), deliveryInterceptor];
}

/**
 * Runs `call` (whose RPCs carry the returned metadata) and reports, if it fails, whether it is certain that no
 * attempt reached the server. Without the interceptor on the connection nothing is ever certain.
 */
export function trackDelivery(): { metadata: Record<string, string>; certainlyUnsent(): boolean; done(): void } {
  const id = randomUUID();
  const delivery: Delivery = { attempts: 0, unsent: 0 };
  deliveries.set(id, delivery);
  return {
    metadata: { [CALL_ID_HEADER]: id },
    certainlyUnsent: () => delivery.attempts > 0 && delivery.unsent === delivery.attempts,
    done: () => void deliveries.delete(id),
  };
}

// One way every process connects to NATS: named (it shows in the server's connection list), and reconnecting
// for as long as it takes, so that a broker restart is an outage to wait out, never a reason to give up.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';

export async function connectNats(servers: string[], name: string): Promise<NatsConnection> {
  return connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 500, waitOnFirstConnect: false });
}

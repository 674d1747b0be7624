// Back-pressure end to end: workers that fall behind (one activity at a time, each pricing taking 2 s) make the
// API refuse new orders with a fast 503 `overloaded` and a Retry-After, without starting a saga, while the orders
// already admitted go on; a retry of an admitted order is still answered; once the workers catch up, new orders
// are admitted again.
import assert from 'node:assert/strict';
import { WorkflowNotFoundError } from '@temporalio/client';
import { orderIdForKey } from '../../src/api/order-workflows';
import { PRINCIPALS, TestStack } from '../support/stack';

describe('back-pressure on new orders (Temporal dev server, slow workers, HTTP)', function () {
  let system: TestStack;

  before(async function () {
    system = await TestStack.start('bp', { FAULT_INJECTION: 'priceOrder:delay=2000', ACTIVITY_CONCURRENCY: '1', ADMISSION_MAX_BACKLOG_AGE: '1s' });
  });

  after(async function () {
    await system?.stop();
  });

  const order = { customerId: 'cust-alice', lines: [{ sku: 'MS-002', quantity: 1 }] };
  const place = (key: string) => system.http('POST', '/orders', order, { 'Idempotency-Key': key });

  it('refuses new orders with 503 overloaded and Retry-After while the workers are behind, and admits them again after', async function () {
    const admitted = ['bp-1', 'bp-2', 'bp-3'];
    for (const key of admitted) assert.equal((await place(key)).status, 202);

    // The second and third pricings wait behind the first: once the oldest has waited over 1 s, new orders are refused.
    let refused;
    for (let i = 0; i < 100 && !refused; i++) {
      const response = await place(`bp-new-${i}`);
      if (response.status === 503) refused = { key: `bp-new-${i}`, response };
      else {
        assert.equal(response.status, 202, JSON.stringify(response.body));
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
    assert.ok(refused, 'never refused while the workers were behind');
    const { response } = refused;
    assert.equal(response.body.error.code, 'overloaded');
    assert.match(response.body.error.message, /the workers are behind: the oldest activity task on inventory has waited/);
    assert.ok(Number(response.headers.get('retry-after')) >= 1, `Retry-After: ${response.headers.get('retry-after')}`);
    // Nothing was started for the refused order.
    const refusedId = orderIdForKey({ clientId: PRINCIPALS.client, customerId: order.customerId }, refused.key);
    await assert.rejects(system.client.workflow.getHandle(refusedId).describe(), WorkflowNotFoundError);

    // A retry of an order already admitted is answered as before, overloaded or not.
    const retry = await place('bp-3');
    assert.equal(retry.status, 202);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');

    // The workers catch up (each pricing takes 2 s, one at a time): new orders are admitted again.
    let again;
    for (let i = 0; i < 240 && again?.status !== 202; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      again = await place(refused.key);
    }
    assert.equal(again?.status, 202, JSON.stringify(again?.body));
  });

  it('keeps accepting orders while no worker runs: an old backlog nobody polls is an outage, and the orders wait for the workers', async function () {
    await system.stack.workers!.shutdown();
    // Right after the last poll a dead worker cannot be told from a busy one; 10 s without a poll can.
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    // Without an Idempotency-Key: a keyed order asks the orders service first, which is down with the workers here.
    const placeUnkeyed = () => system.http('POST', '/orders', order);
    const first = await placeUnkeyed();
    assert.equal(first.status, 202, JSON.stringify(first.body));
    // Its first workflow task now waits past the 1 s limit, with nobody to take it: still an outage, not an overload.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (let i = 0; i < 2; i++) {
      const response = await placeUnkeyed();
      assert.equal(response.status, 202, JSON.stringify(response.body));
    }
  });
});

// The sandbox payment provider and the callback signature the API checks.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isValidSignature, sandboxProvider, signCallback, SIGNATURE_HEADER } from '../../src/activities/payments/provider';

describe('payment provider', function () {
  let server: Server;
  let url: string;
  const received: { body: string; signature: string | undefined }[] = [];

  before(async function () {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        received.push({ body, signature: req.headers[SIGNATURE_HEADER] as string | undefined });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/payments/callback`;
  });

  after(function () {
    server.close();
  });

  it('sandbox confirms an authorization once, however often it is asked, with a valid signature', async function () {
    const provider = sandboxProvider({ callbackUrl: url, secret: 's3cret', delayMs: 20, log: () => {} });
    const request = { orderId: 'ord_p1', providerRef: 'pay_ord_p1', amountCents: 1234 };
    await Promise.all([provider.requestConfirmation(request), provider.requestConfirmation(request)]);
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(received.length, 1);
    assert.deepEqual(JSON.parse(received[0].body), { orderId: 'ord_p1', providerRef: 'pay_ord_p1', outcome: 'CONFIRMED' });
    assert.ok(isValidSignature('s3cret', Buffer.from(received[0].body), received[0].signature));
  });

  it('accepts only a signature made with the same secret over the same bytes', function () {
    const body = Buffer.from('{"orderId":"ord_x"}');
    const signature = signCallback('secret', body);
    assert.ok(isValidSignature('secret', body, signature));
    assert.ok(!isValidSignature('other', body, signature));
    assert.ok(!isValidSignature('secret', Buffer.from('{"orderId":"ord_y"}'), signature));
    assert.ok(!isValidSignature('secret', body, undefined));
    assert.ok(!isValidSignature('secret', body, 'not-hex'));
  });
});

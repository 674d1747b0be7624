// freePort's ports are bound later by other programs: they must stay out of the kernel's ephemeral range, where any
// outgoing connection may take them first (EADDRINUSE in CI), and never be handed out twice.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { freePort } from '../../src/local-stack/free-port';

describe('freePort', function () {
  it('hands out distinct ports below the ephemeral range that nothing listens on', async function () {
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    assert.equal(new Set(ports).size, ports.length, `distinct: ${ports.join(', ')}`);
    for (const port of ports) assert.ok(port > 1024 && port < ephemeralLow, `${port} is below ${ephemeralLow}`);
  });
});

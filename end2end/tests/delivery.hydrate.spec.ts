import { expect, test } from './fixtures';
import fs from 'node:fs';
import path from 'node:path';
import { newDevice } from './mqtt';

const site = path.resolve(__dirname, '..', '..', 'target', 'site');
// The files by their hashed names (tools/hash-assets.mjs): /pkg/iot-dashboard.<hash>.wasm, ...
const manifest: Record<string, string> = JSON.parse(fs.readFileSync(path.join(site, 'asset-manifest.json'), 'utf8'));
const bundle = ['/pkg/iot-dashboard.wasm', '/pkg/iot-dashboard.js', '/pkg/iot-dashboard.css'].map((f) => manifest[f]);

test('the browser gets the WASM compressed and runs it', async ({ page }) => {
  const wasm = page.waitForResponse((r) => r.url().endsWith(bundle[0]));
  await page.goto('/');
  const response = await wasm;
  expect(['br', 'gzip']).toContain(await response.headerValue('content-encoding'));
  const sent = Number(await response.headerValue('content-length'));
  expect(sent).toBeLessThan(fs.statSync(path.join(site, bundle[0])).size / 2);
  // It ran: the page is hydrated and the live feed connected.
  await expect(page.locator('.live-badge[data-state="live"]')).toBeVisible();
});

for (const encoding of ['br', 'gzip']) {
  test(`WASM, JS and CSS are sent with ${encoding} to a client that accepts it, as is otherwise`, async ({ request }) => {
    for (const file of bundle) {
      const raw = fs.readFileSync(path.join(site, file));
      const packed = await request.get(file, { headers: { 'accept-encoding': encoding } });
      expect(packed.status()).toBe(200);
      expect(packed.headers()['content-encoding'], file).toBe(encoding);
      expect(Number(packed.headers()['content-length']), file).toBeLessThan(raw.length);
      // Decoded, it is the file itself.
      expect(Buffer.compare(await packed.body(), raw), file).toBe(0);

      const plain = await request.get(file, { headers: { 'accept-encoding': 'identity' } });
      expect(plain.headers()['content-encoding'], file).toBeUndefined();
      expect(Number(plain.headers()['content-length']), file).toBe(raw.length);
    }
  });
}

test('server answers (JSON, CSV) are compressed for a client that accepts it; pages stream as they are', async ({ request }) => {
  const stored = await request.post('/api/telemetry', {
    data: [{ device_id: newDevice('E2E_PACKED'), telemetry: { temperature: 21.5, humidity: 40 } }],
  });
  expect(stored.status()).toBe(202);
  const changes = '/api/changes?after=0&limit=500';
  for (const encoding of ['br', 'gzip']) {
    const packed = await request.get(changes, { headers: { 'accept-encoding': encoding } });
    expect(packed.status()).toBe(200);
    expect(packed.headers()['content-encoding']).toBe(encoding);
    const plain = await request.get(changes, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers()['content-encoding']).toBeUndefined();
    // Decoded, the same answer (other tests may add changes meanwhile: compare the first ones).
    const [a, b] = [await packed.json(), await plain.json()];
    expect(a.events.slice(0, 10)).toEqual(b.events.slice(0, 10));
    expect(a.events.length).toBeGreaterThan(0);
  }
  const page = await request.get('/', { headers: { 'accept-encoding': 'br, gzip' } });
  expect(page.status()).toBe(200);
  expect(page.headers()['content-encoding']).toBeUndefined();
});

import { expect, test } from './fixtures';
import fs from 'node:fs';
import path from 'node:path';

const pkg = path.resolve(__dirname, '..', '..', 'target', 'site', 'pkg');
const bundle = ['iot-dashboard.wasm', 'iot-dashboard.js', 'iot-dashboard.css'];

test('the browser gets the WASM compressed and runs it', async ({ page }) => {
  const wasm = page.waitForResponse((r) => r.url().endsWith('/pkg/iot-dashboard.wasm'));
  await page.goto('/');
  const response = await wasm;
  expect(['br', 'gzip']).toContain(await response.headerValue('content-encoding'));
  const sent = Number(await response.headerValue('content-length'));
  expect(sent).toBeLessThan(fs.statSync(path.join(pkg, 'iot-dashboard.wasm')).size / 2);
  // It ran: the page is hydrated and the live feed connected.
  await expect(page.locator('.live-badge[data-state="live"]')).toBeVisible();
});

for (const encoding of ['br', 'gzip']) {
  test(`WASM, JS and CSS are sent with ${encoding} to a client that accepts it, as is otherwise`, async ({ request }) => {
    for (const file of bundle) {
      const raw = fs.readFileSync(path.join(pkg, file));
      const packed = await request.get(`/pkg/${file}`, { headers: { 'accept-encoding': encoding } });
      expect(packed.status()).toBe(200);
      expect(packed.headers()['content-encoding'], file).toBe(encoding);
      expect(Number(packed.headers()['content-length']), file).toBeLessThan(raw.length);
      // Decoded, it is the file itself.
      expect(Buffer.compare(await packed.body(), raw), file).toBe(0);

      const plain = await request.get(`/pkg/${file}`, { headers: { 'accept-encoding': 'identity' } });
      expect(plain.headers()['content-encoding'], file).toBeUndefined();
      expect(Number(plain.headers()['content-length']), file).toBe(raw.length);
    }
  });
}

// The README's screenshots, shrunk: end2end/screenshots/*.png (written by
// tests/screenshots.hydrate.spec.ts) as palette PNGs (libimagequant, through sharp) in
// docs/screenshots/, each under 150 KB. `make screenshots` runs it after the spec.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const here = path.dirname(fileURLToPath(import.meta.url));
const from = path.join(here, 'screenshots');
const to = path.join(here, '..', 'docs', 'screenshots');
// The README shows these (dashboard.png, the same board as dashboard-edit.png, stays local).
const NAMES = ['overview', 'dashboard-edit', 'dashboard-dark', 'device', 'phone', 'phone-offline'];
const LIMIT = 150 * 1024;

fs.mkdirSync(to, { recursive: true });
let failed = false;
for (const name of NAMES) {
  const source = path.join(from, `${name}.png`);
  // 256 colours are plenty for flat UI colours and anti-aliased text; a little dithering
  // keeps the charts' bands smooth.
  const png = await sharp(source).png({ palette: true, colours: 256, quality: 90, dither: 0.5, effort: 10, compressionLevel: 9 }).toBuffer();
  fs.writeFileSync(path.join(to, `${name}.png`), png);
  const { width, height } = await sharp(png).metadata();
  const kb = (png.length / 1024).toFixed(1);
  const over = png.length >= LIMIT;
  failed ||= over;
  console.log(`docs/screenshots/${name}.png  ${width}×${height}  ${kb} KB (from ${(fs.statSync(source).size / 1024).toFixed(1)} KB)${over ? '  OVER 150 KB' : ''}`);
}
if (failed) process.exit(1);

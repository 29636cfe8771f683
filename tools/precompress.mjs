// Writes a brotli (.br) and a gzip (.gz) copy next to every text or WASM file of the site
// (node tools/precompress.mjs SITE fast|best). The server's static files handler sends the
// copy a browser accepts, so the WASM goes over the wire at its compressed size; a copy that
// would not be smaller is not written. `best` (release builds) is brotli 11 and gzip 9; `fast`
// (debug builds, with a WASM file ten times larger) is brotli 5 and gzip 6.
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const site = path.resolve(process.argv[2] ?? 'target/site');
const best = (process.argv[3] ?? 'best') === 'best';
const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);
const compressible = /\.(wasm|js|mjs|css|svg|json|webmanifest|html|txt)$/;

async function* files(dir) {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* files(full);
    // The service worker stays one file: browsers fetch it to look for a new version, and a
    // copy left from an older build must never answer for it.
    else if (compressible.test(entry.name) && full !== path.join(site, 'sw.js')) yield full;
  }
}

let raw = 0;
let sent = 0;
const jobs = [];
for await (const file of files(site)) {
  jobs.push(
    (async () => {
      const data = await fs.readFile(file);
      const [br, gz] = await Promise.all([
        brotli(data, {
          params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: best ? 11 : 5,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
          },
        }),
        gzip(data, { level: best ? 9 : 6 }),
      ]);
      raw += data.length;
      sent += Math.min(data.length, br.length);
      if (br.length < data.length) await fs.writeFile(`${file}.br`, br);
      if (gz.length < data.length) await fs.writeFile(`${file}.gz`, gz);
    })(),
  );
}
await Promise.all(jobs);
console.log(`precompressed ${jobs.length} files: ${raw} bytes, ${sent} with brotli`);

#!/usr/bin/env bash
# Sizes of the client (raw, gzip -9, brotli q11) in the finished site (make release): every
# file a page loads (the WASM and its JS, the stylesheet, uPlot, our scripts), then the service
# worker, which the browser fetches once on its own.
set -euo pipefail
cd "$(dirname "$0")/../${1:-target/site}"
node -e '
const fs = require("fs"), zlib = require("zlib");
const sizes = f => {
  const b = fs.readFileSync(f);
  return [b.length, zlib.gzipSync(b, { level: 9 }).length,
    zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length];
};
const list = d => fs.readdirSync(d).filter(f => /\.(wasm|js|css)$/.test(f)).sort().map(f => `${d}/${f}`);
if (!fs.existsSync("vendor")) throw new Error("no vendor/ here: run scripts/site.sh first");
const page = [...list("pkg"), ...list("vendor"), ...fs.readdirSync(".").filter(f => /\.js$/.test(f) && f !== "sw.js").sort()];
let total = [0, 0, 0];
console.log("| file | raw | gzip | brotli |\n|---|---|---|---|");
for (const f of page) {
  const s = sizes(f);
  s.forEach((v, i) => (total[i] += v));
  console.log(`| ${f} | ${s.join(" | ")} |`);
}
console.log(`| **whole client, what a page loads** | ${total.join(" | ")} |`);
if (fs.existsSync("sw.js")) console.log(`| sw.js (service worker, fetched once) | ${sizes("sw.js").join(" | ")} |`);
'

#!/usr/bin/env bash
# Sizes of the client bundle in target/site/pkg (raw, gzip -9, brotli q11): run after a build.
set -euo pipefail
cd "$(dirname "$0")/../target/site/pkg"
node -e '
const fs = require("fs"), zlib = require("zlib");
let total = [0, 0, 0];
console.log("| file | raw | gzip | brotli |\n|---|---|---|---|");
for (const f of fs.readdirSync(".").filter(f => /\.(wasm|js|css)$/.test(f)).sort()) {
  const b = fs.readFileSync(f);
  const s = [b.length, zlib.gzipSync(b, { level: 9 }).length,
    zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length];
  s.forEach((v, i) => (total[i] += v));
  console.log(`| ${f} | ${s.join(" | ")} |`);
}
console.log(`| total | ${total.join(" | ")} |`);
'

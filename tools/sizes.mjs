// Sizes of files as a Markdown table: raw, gzip -9 and brotli q11 (what tools/precompress.mjs
// serves at its best setting).
//   node tools/sizes.mjs [--title T] [--total LABEL] FILE... [--after FILE...]
// --total adds a row summing the files before --after; files after it are listed, not summed.
import fs from 'node:fs';
import zlib from 'node:zlib';

const args = process.argv.slice(2);
const option = name => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args.splice(i, 2)[1];
};
const title = option('--title') ?? 'file';
const total = option('--total');
const split = args.indexOf('--after');
const summed = split < 0 ? args : args.slice(0, split);
const after = split < 0 ? [] : args.slice(split + 1);

const sizes = file => {
  const b = fs.readFileSync(file);
  return [b.length, zlib.gzipSync(b, { level: 9 }).length,
    zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length];
};
const sum = [0, 0, 0];
console.log(`| ${title} | raw | gzip | brotli |\n|---|---|---|---|`);
for (const file of summed) {
  const s = sizes(file);
  s.forEach((v, i) => (sum[i] += v));
  console.log(`| ${file} | ${s.join(' | ')} |`);
}
if (total) console.log(`| **${total}** | ${sum.join(' | ')} |`);
for (const file of after) console.log(`| ${file} | ${sizes(file).join(' | ')} |`);

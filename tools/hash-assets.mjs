// Gives every script, stylesheet and WASM file a page loads a name with its content's hash
// (node tools/hash-assets.mjs [site]), so a browser or a CDN may keep each one for a year
// (`Cache-Control: immutable`): a new build makes new names. The files at the top of the site,
// in pkg/ and in vendor/ are renamed (theme.js -> theme.0123456789abcdef.js); the service
// worker (sw.js) keeps its name, as browsers require. The names go to asset-manifest.json
// ({"/theme.js": "/theme.0123456789abcdef.js", ...}), which the server reads at start to write
// them into pages (and tools/build-sw.mjs to precache them).
//
// The app's JS and WASM (pkg/<name>.js and pkg/<name>.wasm) share one hash, of both files:
// Leptos's hydration script loads them by one name.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const site = path.resolve(process.argv[2] ?? path.join(here, '..', 'target', 'site'));
const manifestPath = path.join(site, 'asset-manifest.json');
const hashed = /\.[0-9a-f]{16}\.(js|css|wasm)$/;
const code = /\.(js|css|wasm)$/;

if (fs.existsSync(path.join(site, 'pkg', 'snippets'))) {
  // wasm-bindgen's inline JS is imported by relative name from the app's JS: renaming it
  // would need its imports rewritten. Nothing here uses it yet.
  console.error('hash-assets: pkg/snippets/ is not handled (its imports would need rewriting)');
  process.exit(1);
}

const hashOf = (...files) => {
  const h = crypto.createHash('sha256');
  for (const f of files) h.update(fs.readFileSync(f));
  return h.digest('hex').slice(0, 16);
};
const withHash = (rel, hash) => rel.replace(code, (ext) => `.${hash}${ext}`);

// A second run over the same site keeps what the first one renamed.
const manifest = fs.existsSync(manifestPath) ? JSON.parse(fs.readFileSync(manifestPath, 'utf8')) : {};
const rename = (rel, hash) => {
  const to = withHash(rel, hash);
  fs.renameSync(path.join(site, rel), path.join(site, to));
  manifest[`/${rel}`] = `/${to}`;
};

const candidates = ['', 'pkg', 'vendor'].flatMap((dir) =>
  fs.existsSync(path.join(site, dir))
    ? fs
        .readdirSync(path.join(site, dir), { withFileTypes: true })
        .filter((e) => e.isFile() && code.test(e.name) && !hashed.test(e.name))
        .map((e) => path.posix.join(dir, e.name))
        .filter((rel) => rel !== 'sw.js' && !/^workbox-/.test(rel))
    : [],
);
const done = new Set();
for (const rel of candidates) {
  if (done.has(rel)) continue;
  const wasm = rel.startsWith('pkg/') && rel.endsWith('.js') ? rel.replace(/\.js$/, '.wasm') : null;
  if (wasm && candidates.includes(wasm)) {
    const hash = hashOf(path.join(site, rel), path.join(site, wasm));
    rename(rel, hash);
    rename(wasm, hash);
    done.add(wasm);
  } else if (!(rel.startsWith('pkg/') && rel.endsWith('.wasm') && candidates.includes(rel.replace(/\.wasm$/, '.js')))) {
    rename(rel, hashOf(path.join(site, rel)));
  }
  done.add(rel);
}

const sorted = Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => a.localeCompare(b)));
fs.writeFileSync(manifestPath, `${JSON.stringify(sorted, null, 2)}\n`);
console.log(`hashed ${done.size} files -> ${manifestPath}`);

// Generates the service worker over the built site (node tools/build-sw.mjs [site]).
// The hashed JS/WASM/CSS files (asset-manifest.json, tools/hash-assets.mjs) are precached by
// their names, which change with their content; icons and the manifest with a content
// revision. Pages and server functions are network-first with the cache as the offline
// fallback; /ws/live is never touched (service workers do not see WebSockets).
//
// The hashed files' URLs start with ASSETS_BASE, which the server replaces when it serves
// sw.js: with web.assets_url (a CDN: the worker precaches from there, which needs the CDN to
// send Access-Control-Allow-Origin), or with nothing (this server, the default).
import { generateSW } from 'workbox-build';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const site = path.resolve(process.argv[2] ?? path.join(here, '..', 'target', 'site'));
// Also in server/src/web/assets.rs.
const ASSETS_BASE = '__IOT_ASSETS_URL__';
const hashed = Object.values(JSON.parse(fs.readFileSync(path.join(site, 'asset-manifest.json'), 'utf8')));

const { count, size, warnings } = await generateSW({
  globDirectory: site,
  globPatterns: ['**/*.{svg,png,webmanifest,woff2}'],
  globIgnores: ['sw.js', 'workbox-*.js'],
  // Their names are their revisions.
  additionalManifestEntries: hashed.map((url) => ({ url: `${ASSETS_BASE}${url}`, revision: null })),
  swDest: path.join(site, 'sw.js'),
  inlineWorkboxRuntime: true,
  mode: 'production',
  sourcemap: false,
  // A new version waits until the user accepts "Update available — reload" (pwa.js posts
  // SKIP_WAITING); the first one takes control of open pages at once.
  skipWaiting: false,
  clientsClaim: true,
  cleanupOutdatedCaches: true,
  // Debug builds ship a large WASM file.
  maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
  runtimeCaching: [
    {
      // Users, device keys, the account and the sign-in pages (a setup link holds its token)
      // are kept nowhere but on the server: never cached (public/pwa.js, which keeps the pages
      // the worker did not see load, leaves the same ones out).
      urlPattern: ({ url }) =>
        ['/admin', '/account', '/login', '/setup'].includes(url.pathname) ||
        url.pathname.startsWith('/admin/') ||
        url.pathname.startsWith('/api/admin/') ||
        url.pathname.startsWith('/auth/'),
      handler: 'NetworkOnly',
    },
    {
      // Pages: the server's HTML when reachable, the last copy when not; a page never opened
      // before falls back to the overview (the app shell), which pwa.js moves to its own URL.
      urlPattern: ({ request }) => request.mode === 'navigate',
      handler: 'NetworkFirst',
      options: {
        cacheName: 'pages',
        networkTimeoutSeconds: 3,
        expiration: { maxEntries: 50 },
        plugins: [
          {
            handlerDidError: async () => {
              const home = await (await caches.open('pages')).match('/');
              if (!home) return undefined;
              const html = (await home.text()).replace('<html', '<html data-offline-fallback');
              return new Response(html, { status: 200, headers: home.headers });
            },
          },
        ],
      },
    },
    {
      // Missed changes are only worth anything fresh.
      urlPattern: ({ url }) => url.pathname === '/api/changes',
      handler: 'NetworkOnly',
    },
    {
      urlPattern: ({ url }) => url.pathname.startsWith('/api/'),
      handler: 'NetworkFirst',
      options: { cacheName: 'api', networkTimeoutSeconds: 3, expiration: { maxEntries: 200 } },
    },
  ],
});
for (const w of warnings) console.warn(`service worker: ${w}`);
console.log(`service worker: ${count} files precached (${(size / 1024).toFixed(0)} KiB) -> ${path.join(site, 'sw.js')}`);

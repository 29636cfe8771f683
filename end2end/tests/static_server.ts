import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

// A plain static file server standing in for a CDN on another origin: serves a folder as it
// is, with the content types browsers need (application/wasm for streaming compilation) and
// Access-Control-Allow-Origin for the one origin allowed (the dashboard's), which module
// scripts, the WASM fetch and the service worker's precache need from another origin.

const types: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webmanifest': 'application/manifest+json',
};

export interface StaticServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Paths asked for, in order. */
  requests: string[];
  /** The origin sent in Access-Control-Allow-Origin (none until set). */
  allow(origin: string): void;
  close(): Promise<void>;
}

export async function serveStatic(root: string): Promise<StaticServer> {
  let allowed: string | null = null;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://cdn');
    requests.push(url.pathname);
    const file = path.join(root, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ''));
    if (allowed) {
      res.setHeader('Access-Control-Allow-Origin', allowed);
      res.setHeader('Vary', 'Origin');
    }
    if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': types[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': fs.statSync(file).size,
    });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    allow: (origin) => (allowed = origin),
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Issue 18, acceptance 2: the real cluster (scripts/cluster.sh: PostgreSQL, Mosquitto, three
// nodes each started again 1 s after it dies, haproxy in front), a device page opened through
// haproxy, and the node serving its WebSocket killed -9: the page is live again within 3 s and
// its chart goes on with every reading once, as the history read back afterwards says.
const repo = path.resolve(__dirname, '..', '..');

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The first of three free ports in a row (the nodes'). */
async function freeRun(): Promise<number> {
  for (;;) {
    const first = await freePort();
    if (first < 65_000 && (await portFree(first + 1)) && (await portFree(first + 2))) return first;
  }
}

interface Cluster {
  web: string;
  mqttPort: number;
  nodePorts: number[];
  /** The script's folder: logs and each node's pid (nodeN.pid). */
  dir: string;
  stop(): Promise<void>;
}

async function startCluster(): Promise<Cluster> {
  const [webPort, mqttPort, firstNode] = [await freePort(), await freePort(), await freeRun()];
  const script: ChildProcess = spawn('bash', ['scripts/cluster.sh', 'target/debug'], {
    cwd: repo,
    env: {
      ...process.env,
      CLUSTER_WEB: `127.0.0.1:${webPort}`,
      CLUSTER_MQTT: `127.0.0.1:${mqttPort}`,
      CLUSTER_NODE_PORT: String(firstNode),
      CLUSTER_DEVICES: '2',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  script.stdout!.on('data', (d) => (output += d));
  script.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => script.once('exit', () => resolve()));
  const stop = async () => {
    // The script's trap stops the nodes' loops, the nodes, haproxy, Mosquitto and PostgreSQL.
    script.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  };
  for (let i = 0; i < 600 && script.exitCode === null; i++) {
    const dir = /Logs: (\S+)/.exec(output)?.[1];
    // The script prints its folder once the nodes are up, and haproxy a moment later.
    const web = `http://127.0.0.1:${webPort}`;
    if (dir && (await fetch(`${web}/healthz`).then((r) => r.ok, () => false))) {
      return { web, mqttPort, nodePorts: [0, 1, 2].map((i) => firstNode + i), dir, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`the cluster did not start:\n${output.slice(-3000)}`);
}

/** Each node's count of /ws/live clients (from its /metrics), in node order; -1 if it did not answer. */
async function liveClients(cluster: Cluster): Promise<number[]> {
  return Promise.all(
    cluster.nodePorts.map(async (port) => {
      try {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return Number(/^iot_live_clients (\d+)$/m.exec(text)?.[1] ?? -1);
      } catch {
        return -1;
      }
    }),
  );
}

/** Every chart's latest data as the page handed it to uPlot (its spec), by id, while it is shown. */
function recordCharts() {
  const specs: Record<number, string> = {};
  (window as unknown as { chartSpecs: typeof specs }).chartSpecs = specs;
  let charts:
    | { mount: (...a: unknown[]) => number; update: (id: number, spec: string) => boolean; destroy: (id: number) => void }
    | undefined;
  Object.defineProperty(window, 'iotCharts', {
    configurable: true,
    get: () => charts,
    set: (v) => {
      const { mount, update, destroy } = v;
      v.mount = (el: unknown, spec: string, onZoom: unknown) => {
        const id = mount(el, spec, onZoom);
        specs[id] = spec;
        return id;
      };
      v.update = (id: number, spec: string) => {
        const done = update(id, spec);
        if (done) specs[id] = spec;
        return done;
      };
      v.destroy = (id: number) => {
        delete specs[id];
        destroy(id);
      };
      charts = v;
    },
  });
}

test('through haproxy, the page stays live when its node is killed -9, its chart missing and doubling nothing', async ({ page }) => {
  test.setTimeout(90_000);
  const cluster = await startCluster();
  let publisher: ChildProcess | undefined;
  try {
    const device = newDevice('E2E_FAILOVER');
    const metric = 'counter';
    // The first reading, 50 minutes ago, makes the device; the rest come while the page watches.
    const first = Date.now() - 50 * 60_000;
    publish(device, { [metric]: -1 }, new Date(first), { port: cluster.mqttPort });
    // Mosquitto acknowledged it; a node stores it a moment later.
    await expect
      .poll(async () => ((await (await fetch(`${cluster.web}/api/devices`)).json()).devices as { id: string }[]).some((d) => d.id === device))
      .toBe(true);

    await page.addInitScript(recordCharts);
    const histories: { bucketMs: number; buckets: number }[] = [];
    page.on('response', async (r) => {
      if (!new URL(r.url()).pathname.startsWith('/api/history')) return;
      const body = await r.json().catch(() => null);
      if (body) histories.push({ bucketMs: body.bucket_ms, buckets: body.buckets.length });
    });
    // What the page was told, for the report when the chart and the history disagree.
    const told: string[] = [];
    page.on('websocket', (ws) => {
      told.push(`${Date.now()} socket opened`);
      ws.on('framereceived', (f) => {
        const text = String(f.payload);
        if (!text.includes(device) && !text.includes('hello')) return;
        const e = JSON.parse(text);
        told.push(`${Date.now()} ws ${e.type} seq ${e.seq ?? e.last_seq} ${JSON.stringify(e.values ?? '')}`);
      });
      ws.on('close', () => told.push(`${Date.now()} socket closed`));
    });
    page.on('response', async (r) => {
      if (!new URL(r.url()).pathname.startsWith('/api/changes')) return;
      const body = await r.text().catch(() => '');
      const seqs = [...body.matchAll(/"seq":(\d+)/g)].map((m) => m[1]);
      told.push(`${Date.now()} ${r.url().replace(/^.*\?/, 'changes ')} ${r.status()} seqs ${seqs[0]}..${seqs.at(-1)} (${seqs.length})`);
    });
    page.on('requestfailed', (r) => told.push(`${Date.now()} failed ${r.url()} ${r.failure()?.errorText}`));
    await page.goto(`${cluster.web}/device/${device}?metric=${metric}&range=1h`);
    const badge = page.locator('.live-badge');
    await expect(badge).toHaveAttribute('data-state', 'live');
    const host = page.locator('.uplot-host').first();
    await expect(host.locator('canvas')).toBeVisible();
    // The chart asks again once it has measured its width: the buckets it shows are that answer's.
    await expect.poll(() => histories.length).toBeGreaterThan(0);
    await expect.poll(async () => Number(await host.getAttribute('data-points'))).toBe(histories.at(-1)!.buckets);
    const width = histories.at(-1)!.bucketMs;
    expect(width).toBeGreaterThan(0);

    // One reading per bucket of the chart (times 40 minutes ago on, a bucket apart, in the
    // middle of each), ten a second, their values counting up: each bucket on the chart then
    // holds one reading, its value saying which.
    const base = Math.floor((Date.now() - 40 * 60_000) / width) * width + Math.floor(width / 2);
    publisher = spawn(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(cluster.mqttPort), '-q', '1', '-i', `${device}-pub`, '-t', `app/device/${device}/telemetry`, '-l'],
      { stdio: ['pipe', 'ignore', 'pipe'] },
    );
    let sent = 0;
    let stopAt = Number.POSITIVE_INFINITY;
    const sending = setInterval(() => {
      if (sent >= stopAt) {
        clearInterval(sending);
        publisher!.stdin!.end();
        return;
      }
      const line = JSON.stringify({ telemetry: { [metric]: sent }, timestamp: new Date(base + sent * width).toISOString() });
      publisher!.stdin!.write(`${line}\n`);
      sent++;
    }, 100);
    const readings = async () => Number(await host.getAttribute('data-readings'));
    await expect.poll(readings).toBeGreaterThan(20);

    // The node serving the page's WebSocket: the one with a live client (nothing else opens one).
    await expect.poll(async () => (await liveClients(cluster)).filter((n) => n === 1).length).toBe(1);
    const serving = (await liveClients(cluster)).indexOf(1);
    const pid = Number(fs.readFileSync(path.join(cluster.dir, `node${serving + 1}.pid`), 'utf8'));
    // Each change of the badge, with the page's clock (the same machine's).
    await page.evaluate(() => {
      const w = window as unknown as { badgeStates: [string, number][] };
      w.badgeStates = [];
      const b = document.querySelector('.live-badge') as HTMLElement;
      new MutationObserver(() => w.badgeStates.push([b.dataset.state ?? '', Date.now()])).observe(b, {
        attributes: true,
        attributeFilter: ['data-state'],
      });
    });
    const sentAtKill = sent;
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    told.push(`${killedAt} killed node ${serving + 1} after reading ${sentAtKill - 1} was sent`);

    // The socket drops, then the page reconnects through haproxy to a node that is up.
    const states = () => page.evaluate(() => (window as unknown as { badgeStates: [string, number][] }).badgeStates);
    await expect.poll(async () => (await states()).some(([s]) => s !== 'live')).toBe(true);
    await expect.poll(async () => (await states()).at(-1)?.[0], { timeout: 10_000 }).toBe('live');
    const backAt = (await states()).at(-1)![1];
    console.log(`node ${serving + 1} killed: the page was live again after ${backAt - killedAt} ms`);
    expect(backAt - killedAt, 'live again within 3 s of the kill').toBeLessThanOrEqual(3_000);
    const stillLive = await readings();
    await expect.poll(readings, { message: 'readings arrive after the failover' }).toBeGreaterThan(stillLive);

    // Six more seconds of readings, then none: the chart ends with every one of them once.
    stopAt = sentAtKill + 60;
    await expect.poll(() => publisher!.exitCode, { timeout: 20_000 }).toBe(0);
    const expected = [-1, ...Array.from({ length: stopAt }, (_, i) => i)];
    const expectedTimes = [first, ...Array.from({ length: stopAt }, (_, i) => base + i * width)];

    // The history read back through the API (from any node), once the killed node's share of
    // the readings (Mosquitto keeps it for the node's session) is stored: each reading once.
    const stored = async () => {
      const url = `${cluster.web}/api/export.csv?device=${device}&metric=${metric}&from=${first - 1}&to=${Date.now()}`;
      const csv = await (await page.request.get(url)).text();
      return csv.trim().split('\n').slice(1).map((l) => l.split(','));
    };
    await expect.poll(async () => (await stored()).length, { timeout: 20_000 }).toBeGreaterThanOrEqual(expected.length);
    const rows = await stored();
    expect(rows.map((r) => Number(r[4])), 'values stored').toEqual(expected);
    expect(rows.map((r) => Date.parse(r[0])), 'their times').toEqual(expectedTimes);

    // The chart shows the same: in time order, one bucket each, none missing, none out of
    // place; with its count of readings equal to its buckets', none twice.
    const shown = async () => {
      const specs = await page.evaluate(() => Object.values((window as unknown as { chartSpecs: Record<number, string> }).chartSpecs));
      expect(specs).toHaveLength(1);
      const spec = JSON.parse(specs[0]) as { avg: (number | null)[][] };
      return spec.avg[0].filter((v) => v !== null);
    };
    await expect.poll(shown, { message: `values on the chart; the page was told:\n${told.join('\n')}\n`, timeout: 5_000 }).toEqual(expected);
    expect(await readings(), 'readings on the chart').toBe(expected.length);

    // The page's one socket is on a node that is up.
    await expect.poll(async () => (await liveClients(cluster)).reduce((a, n) => a + Math.max(n, 0), 0)).toBe(1);
  } finally {
    publisher?.kill();
    await cluster.stop();
  }
});

import { spawn, spawnSync } from 'node:child_process';

const mqttPort = process.env.E2E_MQTT_PORT || '18837';

/** A device id no other test (or earlier run) has used. */
export function newDevice(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

let published = 0;

/** Where and as whom to publish: by default the shared test server, anonymously. */
export interface PublishOptions {
  /** The broker's port (default: the shared server's, E2E_MQTT_PORT). */
  port?: number | string;
  /** The device's key: signs in as the device (user name = client id = device id). */
  key?: string;
  /** Without a key: connect under this client id (default: a fresh one each call). */
  clientId?: string;
}

/**
 * Publishes one reading at QoS 1 with mosquitto_pub, as a device would. mosquitto_pub exits
 * once the PUBACK arrives, and the server acknowledges only stored readings. Anonymously, each
 * call is its own MQTT session (a fresh client id): a device reconnecting under its old id
 * while the broker is still closing that session is told "unavailable" and has to retry, as
 * real devices do; a test should not depend on that timing. With a key the client id must be
 * the device id, so that retry matters. A refused connection is retried, then thrown (its
 * message says why, e.g. "not authorised").
 */
export function publish(
  device: string,
  telemetry: Record<string, number>,
  at: Date = new Date(),
  options: PublishOptions = {},
): void {
  const payload = JSON.stringify({ telemetry, timestamp: at.toISOString() });
  const login = options.key === undefined
    ? ['-i', options.clientId ?? `e2e-${process.pid}-${++published}`]
    : ['-i', device, '-u', device, '-P', options.key];
  const args = [
    '-h', '127.0.0.1', '-p', String(options.port ?? mqttPort), '-q', '1', ...login,
    '-t', `app/device/${device}/telemetry`, '-m', payload,
  ];
  for (let attempt = 1; ; attempt++) {
    const run = spawnSync('mosquitto_pub', args, { encoding: 'utf8', timeout: 10_000 });
    if (run.status === 0) return;
    const why = `${run.stderr ?? ''}${run.error ?? ''}`.trim();
    if (attempt >= 3 || !/refused|unavailable/i.test(why)) {
      throw new Error(`mosquitto_pub for ${device} failed (exit ${run.status}): ${why}`);
    }
  }
}

/**
 * One attempt to publish, without retrying and without holding up the test while it runs (the
 * page can be watched meanwhile): resolves with mosquitto_pub's exit status and what it printed
 * (a refused connection says why).
 */
export function publishOnce(
  device: string,
  telemetry: Record<string, number>,
  options: PublishOptions = {},
): Promise<{ status: number | null; output: string }> {
  const payload = JSON.stringify({ telemetry, timestamp: new Date().toISOString() });
  const login = options.key === undefined
    ? ['-i', options.clientId ?? `e2e-${process.pid}-${++published}`]
    : ['-i', device, '-u', device, '-P', options.key];
  const args = [
    '-h', '127.0.0.1', '-p', String(options.port ?? mqttPort), '-q', '1', ...login,
    '-t', `app/device/${device}/telemetry`, '-m', payload,
  ];
  return new Promise((resolve) => {
    const run = spawn('mosquitto_pub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    run.stdout.on('data', (d) => (output += d));
    run.stderr.on('data', (d) => (output += d));
    run.on('close', (status) => resolve({ status, output }));
  });
}

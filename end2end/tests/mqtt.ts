import { execFileSync } from 'node:child_process';

const mqttPort = process.env.E2E_MQTT_PORT ?? '18837';

/** A device id no other test (or earlier run) has used. */
export function newDevice(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/**
 * Publishes one reading at QoS 1 with mosquitto_pub, as a device would. mosquitto_pub exits
 * once the PUBACK arrives, and the server acknowledges only stored readings.
 */
export function publish(device: string, telemetry: Record<string, number>, at: Date = new Date()): void {
  const payload = JSON.stringify({ telemetry, timestamp: at.toISOString() });
  execFileSync('mosquitto_pub', [
    '-h', '127.0.0.1', '-p', mqttPort, '-q', '1', '-i', `e2e-${device}`,
    '-t', `app/device/${device}/telemetry`, '-m', payload,
  ]);
}

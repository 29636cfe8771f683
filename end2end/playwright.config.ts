import { defineConfig } from '@playwright/test';

// scripts/test.sh picks free ports and a fresh data folder; these defaults serve a manual run.
const webPort = process.env.E2E_WEB_PORT || '3117';
const mqttPort = process.env.E2E_MQTT_PORT || '18837';
const data = process.env.E2E_DATA || '/tmp/iot-dashboard-e2e';
const baseURL = `http://127.0.0.1:${webPort}`;

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
    trace: 'retain-on-failure',
  },
  // Every spec runs hydrated and as plain server-rendered HTML; *.hydrate.spec.ts need JS.
  projects: [
    { name: 'hydrated', use: { javaScriptEnabled: true } },
    { name: 'ssr', use: { javaScriptEnabled: false }, testIgnore: /\.hydrate\.spec\.ts$/ },
  ],
  webServer: {
    command: '../target/debug/server',
    url: `${baseURL}/healthz`,
    env: {
      IOT_WEB_LISTEN: `127.0.0.1:${webPort}`,
      IOT_MQTT_LISTEN: `127.0.0.1:${mqttPort}`,
      IOT_STORAGE_PATH: `${data}/e2e.redb`,
      IOT_SITE_ROOT: '../target/site',
      // The shared server stays open (no user): specs never set it up, but may post a bad form.
      IOT_SETUP_TOKEN: 'e2e-setup-token',
      RUST_LOG: 'info,rmqtt=warn,rmqtt_net=warn',
    },
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});

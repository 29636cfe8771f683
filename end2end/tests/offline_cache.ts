import type { Page } from '@playwright/test';

/** What the app keeps in IndexedDB for offline use (only the parts the specs read). */
export interface OfflineCache {
  devices: { id: string }[];
  alarms?: { id: string; acked: boolean }[];
}

/** The app's offline cache, or null when there is none (never creates the database). */
export function readOfflineCache(page: Page): Promise<OfflineCache | null> {
  return page.evaluate(async () => {
    // Opening a database that does not exist would create it empty: look first.
    if (!(await indexedDB.databases()).some((d) => d.name === 'iot-dashboard')) return null;
    return new Promise<OfflineCache | null>((resolve) => {
      const open = indexedDB.open('iot-dashboard');
      open.onerror = () => resolve(null);
      open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains('state')) return resolve(null);
        const get = db.transaction('state').objectStore('state').get('cache');
        get.onerror = () => resolve(null);
        get.onsuccess = () => {
          db.close();
          resolve(get.result ? JSON.parse(get.result) : null);
        };
      };
    });
  });
}

/** The device ids in the app's offline cache. */
export async function cachedDevices(page: Page): Promise<string[]> {
  return ((await readOfflineCache(page))?.devices ?? []).map((d) => d.id);
}

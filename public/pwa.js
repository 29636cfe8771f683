// The installable-app glue: registers the service worker, shows "Install app" when the browser
// offers installation, and "Update available — reload" when a new version is waiting.
(() => {
  // Offline, a page never opened before is answered with the cached overview: show it as such
  // before the app starts, so its URL matches what it shows.
  if (document.documentElement.hasAttribute('data-offline-fallback') && window.location.pathname !== '/') {
    history.replaceState(null, '', '/');
  }
  const el = (id) => document.getElementById(id);
  let installPrompt = null;
  let waiting = null;

  window.addEventListener('beforeinstallprompt', (event) => {
    event.preventDefault();
    installPrompt = event;
    if (el('install-app')) el('install-app').hidden = false;
  });
  window.addEventListener('appinstalled', () => {
    installPrompt = null;
    if (el('install-app')) el('install-app').hidden = true;
  });

  // Signing out forgets this browser's copies of the data: the service worker's page and API
  // caches and the offline store (the app shell stays precached). The server's answer also
  // clears the HTTP cache (Clear-Site-Data: "cache").
  document.addEventListener('submit', (event) => {
    if (!event.target.closest('form.sign-out')) return;
    event.preventDefault();
    const form = event.target;
    const forget = [
      ...['pages', 'api'].map((name) => ('caches' in window ? caches.delete(name) : Promise.resolve())),
      new Promise((done) => {
        if (!('indexedDB' in window)) return done();
        const request = indexedDB.deleteDatabase('iot-dashboard');
        request.onsuccess = request.onerror = request.onblocked = () => done();
      }),
    ];
    // Never let a stuck store keep anyone signed in.
    Promise.race([Promise.allSettled(forget), new Promise((done) => setTimeout(done, 2000))]).then(() => form.submit());
  });

  document.addEventListener('click', async (event) => {
    if (event.target.closest('#install-app') && installPrompt) {
      installPrompt.prompt();
      await installPrompt.userChoice;
      installPrompt = null;
      el('install-app').hidden = true;
    }
    if (event.target.closest('#update-reload') && waiting) {
      // The new worker takes over; `controllerchange` below reloads once.
      waiting.postMessage({ type: 'SKIP_WAITING' });
    }
  });

  if (!('serviceWorker' in navigator)) return;

  const offerUpdate = (worker) => {
    waiting = worker;
    if (el('update-banner')) el('update-banner').hidden = false;
  };
  // Pages the worker never keeps (tools/build-sw.mjs says the same): users and device keys, the
  // account, and the sign-in pages (a setup link holds its token).
  const neverKept = (path) =>
    ['/admin', '/account', '/login', '/setup'].includes(path) || path.startsWith('/admin/') || path.startsWith('/auth/');
  // The page that installed the worker was loaded before the worker ran, so it is not in the
  // worker's page cache yet: put it there, or the very first visit could not reopen offline.
  const keepThisPage = () =>
    caches
      .open('pages')
      .then((cache) =>
        Promise.all([
          neverKept(window.location.pathname) ? null : cache.add(window.location.href),
          cache.match('/').then((m) => m || cache.add('/')),
        ]),
      )
      .catch(() => {});
  // In-app navigations do not pass through the worker either: keep those pages too.
  const pushState = history.pushState;
  history.pushState = function (...args) {
    const result = pushState.apply(this, args);
    if (navigator.serviceWorker.controller) keepThisPage();
    return result;
  };
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // Only reload for an update the user accepted, not for the first install.
    if (!waiting) {
      keepThisPage();
      return;
    }
    if (reloading) return;
    reloading = true;
    window.location.reload();
  });

  window.addEventListener('load', async () => {
    let registration;
    try {
      registration = await navigator.serviceWorker.register('/sw.js');
    } catch (error) {
      // `make dev` builds have no service worker.
      console.info('no service worker:', error.message);
      return;
    }
    if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
    registration.addEventListener('updatefound', () => {
      const worker = registration.installing;
      worker?.addEventListener('statechange', () => {
        if (worker.state === 'installed' && navigator.serviceWorker.controller) offerUpdate(worker);
      });
    });
    // Look for a new version now and then, and whenever the app comes back to the front.
    setInterval(() => registration.update(), 60 * 60 * 1000);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') registration.update();
    });
  });
})();

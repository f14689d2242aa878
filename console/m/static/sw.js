/* 网格通 service worker: the app shell is precached at install, so the app opens
   without network; API calls and the socket always go to the network (the app
   keeps its own offline data and outbox in IndexedDB). Built by console/m/pwa.ts,
   which fills in the version and the list of files. */
const VERSION = '__VERSION__';
const PRECACHE = __PRECACHE__;
const CACHE = `gridlink-m-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('gridlink-m-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.includes('/api/') || url.pathname.includes('/socket.io')) return;
  if (req.mode === 'navigate') {
    // Network first for the page, so a new version is picked up; the cached shell offline.
    event.respondWith(fetch(req).catch(() => caches.match('./', { ignoreSearch: true }).then((r) => r || caches.match('./index.html'))));
    return;
  }
  event.respondWith(caches.match(req).then((hit) => hit || fetch(req).then((res) => {
    if (res.ok && res.type === 'basic') {
      const copy = res.clone();
      void caches.open(CACHE).then((c) => c.put(req, copy));
    }
    return res;
  })));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const caseId = event.notification.data && event.notification.data.caseId;
  const target = new URL(caseId ? `./#/task/${caseId}` : './', self.registration.scope).toString();
  event.waitUntil(self.clients.matchAll({ type: 'window' }).then((list) => {
    for (const c of list) if ('focus' in c) return c.navigate(target).then((w) => (w || c).focus());
    return self.clients.openWindow(target);
  }));
});

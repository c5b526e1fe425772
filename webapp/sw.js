// SPDX-License-Identifier: BSD-2-Clause
// The app's service worker: makes the app installable and keeps its shell for a flaky network.
// The API (/app/api/) is never cached. Web Push (issue 14 item 5) adds its 'push' and
// 'notificationclick' handlers here.
'use strict';
const SHELL = 'pc-shell-1';
const FILES = ['/app/', '/app/app.js', '/app/app.css', '/app/icon.svg', '/app/manifest.webmanifest'];
self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys().then((ks) => Promise.all(ks.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener('fetch', (e) => {
  const u = new URL(e.request.url);
  if (e.request.method !== 'GET' || u.origin !== location.origin || u.pathname.startsWith('/app/api/')) return;
  // network first: a new portcullisd serves a new app at once; the cache only when offline
  e.respondWith(fetch(e.request).catch(() => caches.match(e.request)));
});

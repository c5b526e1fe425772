// SPDX-License-Identifier: BSD-2-Clause
// The app's service worker: makes the app installable and keeps its shell for a flaky network.
// The API (/app/api/) is never cached. Web Push: a notice names a push (never its number); the
// notification opens the app on that push's approval screen.
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
self.addEventListener('push', (e) => {
  let d = {};
  try { d = e.data ? e.data.json() : {}; } catch (err) { d = {}; }
  const str = (v) => (typeof v === 'string' ? v : '');
  const id = /^[A-Za-z0-9_-]{1,64}$/.test(str(d.push_id)) ? d.push_id : '';
  const scope = self.registration.scope; // https://ORIGIN/app/
  const base = str(d.url).startsWith(scope) ? str(d.url) : scope; // only ever this app
  const from = [str(d.rhost) && 'from ' + str(d.rhost), str(d.service) || 'login'].filter(Boolean).join(' · ');
  e.waitUntil(self.registration.showNotification('Sign-in on ' + (str(d.host) || 'portcullis login'), {
    body: from, tag: id || 'portcullis', icon: '/app/icon.svg', requireInteraction: true,
    data: { url: base.split('#')[0] + (id ? '#push=' + id : ''), push: id },
  }));
});
self.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const d = e.notification.data || {};
  e.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((cs) => {
    const c = cs.find((w) => w.url.startsWith(self.registration.scope));
    if (c) { c.postMessage({ push: d.push || '' }); return c.focus(); }
    return self.clients.openWindow(d.url || self.registration.scope);
  }));
});

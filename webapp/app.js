// SPDX-License-Identifier: BSD-2-Clause
// The Portcullis approval app: invite → passkey; sign in with the passkey; approve a push with
// its number and a fresh passkey assertion bound to that push; deny with one tap.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const views = ['v-signin', 'v-invite', 'v-totp', 'v-list', 'v-approve'];
  let invite = null, current = null, timer = null, wanted = null, vapid = null;

  const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));

  function show(id) {
    views.forEach((v) => { $(v).hidden = v !== id; });
  }
  function say(text, err) {
    const m = $('msg');
    m.textContent = text || '';
    m.hidden = !text;
    m.className = err ? 'err' : '';
  }
  async function api(method, path, body) {
    const r = await fetch('/app/api/' + path, {
      method, credentials: 'same-origin',
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    let j = {};
    try { j = await r.json(); } catch (e) { /* empty */ }
    if (!r.ok) { const e = new Error(j.message || ('HTTP ' + r.status)); e.status = r.status; throw e; }
    return j;
  }
  function age(secs) {
    if (secs < 60) return secs + ' s ago';
    return Math.floor(secs / 60) + ' min ago';
  }

  async function register() {
    $('b-register').disabled = true;
    try {
      const b = await api('POST', 'invite/begin', { invite });
      const cred = await navigator.credentials.create({ publicKey: {
        challenge: unb64u(b.challenge),
        rp: { id: b.rp_id, name: 'Portcullis' },
        user: { id: unb64u(b.user_handle), name: b.user, displayName: b.user },
        pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -8 }],
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
        excludeCredentials: b.exclude.map((id) => ({ type: 'public-key', id: unb64u(id) })),
        attestation: 'none', timeout: 120000,
      } });
      const f = await api('POST', 'invite/finish', {
        invite,
        client_data: b64u(cred.response.clientDataJSON),
        authenticator_data: b64u(cred.response.getAuthenticatorData()),
        alg: cred.response.getPublicKeyAlgorithm(),
      });
      invite = null;
      $('who').textContent = f.user;
      if (f.totp_qr_svg) {
        $('totp-qr').src = 'data:image/svg+xml,' + encodeURIComponent(f.totp_qr_svg);
        show('v-totp');
      } else {
        list();
      }
      say('Passkey created.');
    } catch (e) {
      say('Could not create the passkey: ' + e.message, true);
    } finally {
      $('b-register').disabled = false;
    }
  }

  async function assertion(b, allow) {
    const a = await navigator.credentials.get({ publicKey: {
      challenge: unb64u(b.challenge), rpId: b.rp_id, userVerification: 'required', timeout: 60000,
      allowCredentials: (allow || []).map((id) => ({ type: 'public-key', id: unb64u(id) })),
    } });
    return {
      credential_id: b64u(a.rawId),
      client_data: b64u(a.response.clientDataJSON),
      authenticator_data: b64u(a.response.authenticatorData),
      signature: b64u(a.response.signature),
    };
  }

  async function signin() {
    $('b-signin').disabled = true;
    try {
      const b = await api('POST', 'signin/begin', {});
      const f = await api('POST', 'signin/finish', await assertion(b, []));
      $('who').textContent = f.user;
      say('');
      list();
    } catch (e) {
      say('Sign-in failed: ' + e.message, true);
    } finally {
      $('b-signin').disabled = false;
    }
  }

  async function refresh() {
    let j;
    try {
      j = await api('GET', 'pushes');
    } catch (e) {
      if (e.status === 401) { stop(); $('who').textContent = ''; show('v-signin'); }
      return;
    }
    const ul = $('pushes');
    ul.replaceChildren();
    j.pushes.forEach((p) => {
      const li = document.createElement('li');
      const b = document.createElement('b');
      b.textContent = p.host || 'portcullis login';
      const s = document.createElement('span');
      s.textContent = (p.rhost ? 'from ' + p.rhost + ' · ' : '') + (p.service || 'login') + ' · ' + age(j.now - p.created_at);
      li.append(b, s);
      li.dataset.id = p.push_id;
      li.addEventListener('click', () => approveView(p, j.now));
      ul.append(li);
      if (p.push_id === wanted) { wanted = null; approveView(p, j.now); }
    });
    $('empty').hidden = j.pushes.length > 0;
    wanted = null; // a notification for a push already decided or expired: stay on the list
  }

  // Web Push: "Notify me on this phone". The subscription is this browser's; the server keeps
  // one row per endpoint (POST again replaces its keys), DELETE by the id the server gave it.
  const canNotify = () => 'serviceWorker' in navigator && 'PushManager' in window &&
    'Notification' in window && Notification.permission !== 'denied';
  async function pushSub() {
    const reg = await navigator.serviceWorker.ready;
    return { reg, sub: await reg.pushManager.getSubscription() };
  }
  async function serverSub(sub) {
    if (!sub) return null;
    const j = await api('GET', 'webpush/subscriptions');
    return j.subscriptions.find((s) => s.endpoint === sub.endpoint) || null;
  }
  async function notifyShow() {
    const on = $('notify'), st = $('notify-state'), b = $('b-notify');
    if (!canNotify()) { on.hidden = true; return; }
    on.hidden = false;
    let row = null;
    try { row = Notification.permission === 'granted' && await serverSub((await pushSub()).sub); } catch (e) { row = null; }
    on.dataset.state = row ? 'on' : 'off';
    st.textContent = row ? 'Notifications: on' : 'Notifications: off';
    b.textContent = row ? 'Stop notifying this phone' : 'Notify me on this phone';
  }
  async function notifyToggle() {
    const b = $('b-notify');
    b.disabled = true;
    try {
      const { reg, sub } = await pushSub();
      if ($('notify').dataset.state === 'on') {
        const row = await serverSub(sub);
        if (row) await api('DELETE', 'webpush/subscriptions/' + row.id);
        if (sub) await sub.unsubscribe();
        say('This phone will not be notified.');
      } else {
        if (await Notification.requestPermission() !== 'granted') throw new Error('notifications are not allowed');
        if (!vapid) vapid = (await api('GET', 'webpush/vapid-public-key')).public_key;
        const s = sub || await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: unb64u(vapid) });
        await api('POST', 'webpush/subscriptions', s.toJSON());
        say('This phone will be notified of new sign-ins.');
      }
    } catch (e) {
      say('Notifications: ' + e.message, true);
    } finally {
      b.disabled = false;
      notifyShow();
    }
  }
  function stop() { if (timer) clearInterval(timer); timer = null; }
  function list() {
    current = null;
    show('v-list');
    refresh();
    stop();
    timer = setInterval(refresh, 3000);
    notifyShow();
  }
  function approveView(p, now) {
    stop();
    current = p;
    $('a-host').textContent = p.host || 'portcullis login';
    $('a-rhost').textContent = p.rhost || '–';
    $('a-service').textContent = p.service || 'login';
    $('a-age').textContent = age(now - p.created_at);
    $('a-match').value = '';
    say('');
    show('v-approve');
    $('a-match').focus();
  }
  async function approve() {
    const match = $('a-match').value.trim();
    if (!/^[0-9]{2}$/.test(match)) { say('Type the two digits your SSH prompt shows.', true); return; }
    $('b-approve').disabled = true;
    try {
      const id = current.push_id;
      const b = await api('POST', 'pushes/' + id + '/begin', {});
      const body = await assertion(b, b.allow);
      body.match = match;
      const r = await api('POST', 'pushes/' + id + '/approve', body);
      say(r.state === 'approved' ? 'Approved.' : 'Wrong number: the login was denied.', r.state !== 'approved');
      list();
    } catch (e) {
      say('Not approved: ' + e.message, true);
    } finally {
      $('b-approve').disabled = false;
    }
  }
  async function deny() {
    try {
      await api('POST', 'pushes/' + current.push_id + '/deny', {});
      say('Denied.');
    } catch (e) {
      say('Could not deny: ' + e.message, true);
    }
    list();
  }

  async function start() {
    $('b-register').addEventListener('click', register);
    $('b-signin').addEventListener('click', signin);
    $('b-totp-done').addEventListener('click', () => { $('totp-qr').removeAttribute('src'); list(); });
    $('b-approve').addEventListener('click', approve);
    $('b-deny').addEventListener('click', deny);
    $('b-back').addEventListener('click', list);
    $('a-match').addEventListener('keydown', (e) => { if (e.key === 'Enter') approve(); });
    $('b-signout').addEventListener('click', async () => {
      try { await api('POST', 'signout', {}); } catch (e) { /* signed out anyway */ }
      stop(); $('who').textContent = ''; say(''); show('v-signin');
    });
    window.addEventListener('hashchange', () => location.reload()); // a second invite link
    $('b-notify').addEventListener('click', notifyToggle);
    if ('serviceWorker' in navigator) {
      navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch(() => {});
      // a tapped notification while the app is open: the service worker names the push
      navigator.serviceWorker.addEventListener('message', (e) => {
        if (e.data && typeof e.data.push === 'string' && $('who').textContent) { wanted = e.data.push; list(); }
      });
    }
    const pm = /^#push=([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
    if (pm) { wanted = pm[1]; history.replaceState(null, '', '/app/'); }
    const m = /^#invite=([0-9a-f]{64})$/.exec(location.hash);
    if (m) {
      invite = m[1];
      history.replaceState(null, '', '/app/');
      try {
        const b = await api('POST', 'invite/begin', { invite });
        $('inv-user').textContent = b.user;
        show('v-invite');
      } catch (e) {
        say(e.message, true);
        show('v-signin');
      }
      return;
    }
    try {
      const me = await api('GET', 'me');
      $('who').textContent = me.user;
      list();
    } catch (e) {
      show('v-signin');
    }
  }
  document.addEventListener('DOMContentLoaded', start);
})();

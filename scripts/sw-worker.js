// The service worker's code. scripts/sw.mjs writes it into the build as sw.js, after two
// lines of its own: VERSION (a hash of every file of the build) and FILES (each file's
// path and SHA-256, as a fetch integrity string). So every deploy that changes any file
// brings a new sw.js; the browser installs it next to the old one, and its activation
// deletes the old version's cache.
//
// - Install: every listed file is stored in this version's cache, each one checked
//   against its hash; a file the previous version already holds with the same bytes is
//   copied over rather than downloaded again (the bundles rarely change).
// - Pages (navigations, index.html): network first, so a fresh deploy shows as soon as
//   the server can be reached; the stored index.html when it cannot (offline).
// - Listed files (the hashed wasm/JS/CSS, fonts, bundles): cache first. A file missing
//   from the cache (the app's Retry deletes it, see platform::cache_delete) is fetched
//   again, and stored only when its bytes are this build's.
// - Anything else (the optional CLIP weights under models/, other origins) is left to
//   the browser: never stored here.
//
// No clients.claim(): a page loaded before the worker was active stays with the network
// for its whole life; the next load is served by the worker.
/* global VERSION, FILES */
'use strict';

const PREFIX = 'replab-sw-';
const CACHE = `${PREFIX}${VERSION}`;
// The app's own cache of bundles and fonts (platform/web.rs, CACHE_NAME).
const APP_CACHE = 'replab-v1';
const BASE = new URL('./', self.location.href);
const LISTED = new Map(Object.entries(FILES).map(([p, hash]) => [new URL(p, BASE).href, hash]));
const INDEX = new URL('index.html', BASE).href;

async function sha256(response) {
  const digest = await crypto.subtle.digest('SHA-256', await response.arrayBuffer());
  let bin = '';
  for (const b of new Uint8Array(digest)) bin += String.fromCharCode(b);
  return `sha256-${btoa(bin)}`;
}

// The same bytes from an older version's cache, if one holds them.
async function fromOlder(url, hash) {
  for (const name of await caches.keys()) {
    if (!name.startsWith(PREFIX) || name === CACHE) continue;
    const old = await (await caches.open(name)).match(url);
    if (old && (await sha256(old.clone())) === hash) return old;
  }
  return null;
}

async function store(cache, url, hash) {
  let response = await fromOlder(url, hash);
  if (!response) {
    // 'no-cache': revalidate with the server rather than trust the HTTP cache.
    response = await fetch(url, { cache: 'no-cache', integrity: hash });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  }
  await cache.put(url, response);
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await Promise.all([...LISTED].map(([url, hash]) => store(cache, url, hash)));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    // The app keeps its own copies of the bundles and fonts: forget the ones this build
    // ships, so the app reads this version's (from this cache) rather than older bytes.
    if (await caches.has(APP_CACHE)) {
      const app = await caches.open(APP_CACHE);
      for (const request of await app.keys()) {
        if (LISTED.has(request.url)) await app.delete(request);
      }
    }
  })());
});

async function networkFirst(request) {
  try {
    return await fetch(request);
  } catch (e) {
    const stored = await caches.match(INDEX, { cacheName: CACHE });
    if (stored) return stored;
    throw e;
  }
}

async function cacheFirst(request, url) {
  const cache = await caches.open(CACHE);
  const stored = await cache.match(url);
  if (stored) return stored;
  try {
    const response = await fetch(url, { cache: 'no-cache', integrity: LISTED.get(url) });
    await cache.put(url, response.clone());
    return response;
  } catch {
    // Not this build's bytes (a newer deploy, a broken transfer) or no network: the
    // page gets what the server says, unstored, and checks it as it always does.
    return fetch(request);
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    event.respondWith(networkFirst(request));
    return;
  }
  const key = `${url.origin}${url.pathname}`;
  if (!LISTED.has(key)) return;
  event.respondWith(key === INDEX ? networkFirst(request) : cacheFirst(request, key));
});

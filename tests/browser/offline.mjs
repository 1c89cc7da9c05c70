// Offline after the first visit: the service worker (sw.js, written by scripts/sw.mjs)
// keeps the app shell, the wasm and JS, the CSS, the fonts and the bundles. With the
// browser offline and the server down, a reload still opens the app and a run trains.
// And the worker's version is the hash of the build's files: a changed file, a new one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, assert, runChapter } from './lib.mjs';
import { listFiles, workerFor } from '../../scripts/sw.mjs';

// What a browser says while it cannot reach the server; anything else is an error.
const OFFLINE_NOISE = /ERR_INTERNET_DISCONNECTED|ERR_CONNECTION|ERR_EMPTY_RESPONSE|Failed to fetch|service ?worker/i;

/** The build's worker lists every file and versions them by content. */
function checkVersioning(dist) {
  const shipped = fs.readFileSync(path.join(dist, 'sw.js'), 'utf8');
  const built = workerFor(dist);
  assert(shipped.includes(`const VERSION = '${built.version}';`), `dist/sw.js does not carry the hash of dist (${built.version})`);
  const files = listFiles(dist);
  assert(files.includes('index.html') && files.some((f) => f.endsWith('.wasm')) && files.some((f) => f.startsWith('data/bloodmnist/')) && files.some((f) => f.startsWith('data/organamnist/')) && files.some((f) => f.startsWith('fonts/')) && files.some((f) => f.endsWith('.css')),
    `the worker misses part of the build: ${files.join(', ')}`);
  assert(!files.some((f) => f.startsWith('models/') || f === 'sw.js'), 'the worker lists models/ or itself');
  // A changed build gets a new version; the same bytes the same one; models/ does not count.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'replab-sw-'));
  try {
    fs.mkdirSync(path.join(tmp, 'data'));
    fs.writeFileSync(path.join(tmp, 'index.html'), '<html></html>');
    fs.writeFileSync(path.join(tmp, 'data', 'a.bin'), 'one');
    const v1 = workerFor(tmp).version;
    fs.writeFileSync(path.join(tmp, 'data', 'a.bin'), 'two');
    const v2 = workerFor(tmp).version;
    fs.writeFileSync(path.join(tmp, 'data', 'a.bin'), 'one');
    const v3 = workerFor(tmp).version;
    fs.mkdirSync(path.join(tmp, 'models'));
    fs.writeFileSync(path.join(tmp, 'models', 'clip.safetensors'), 'weights');
    fs.writeFileSync(path.join(tmp, 'sw.js'), 'old worker');
    const v4 = workerFor(tmp).version;
    fs.renameSync(path.join(tmp, 'data', 'a.bin'), path.join(tmp, 'data', 'b.bin'));
    const v5 = workerFor(tmp).version;
    assert(v1 !== v2 && v1 === v3 && v1 === v4 && v5 !== v1, `versions ${v1} ${v2} ${v3} ${v4} ${v5}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { version: built.version, count: files.length };
}

/** Register the offline test: `server.down(true)` makes the test server drop every request. */
export async function offlineRuns(browser, base, dist, server) {
  await test('cpu: after one visit the app works offline (service worker), and a new build gets a new version', async () => {
    const { version, count } = checkVersioning(dist);
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      const t = m.text();
      if ((m.type() === 'error' && !OFFLINE_NOISE.test(t)) || /panicked/.test(t)) errors.push(`console.${m.type()}: ${t.split('\n')[0]}`);
    });
    try {
      await page.goto(`${base}/#/data`);
      // The worker is active once it has stored every file (its install waits for them).
      const ready = await page.evaluate(() => Promise.race([navigator.serviceWorker.ready.then(() => true), new Promise((r) => setTimeout(() => r(false), 120000))]));
      assert(ready, 'no service worker became active within 2 minutes');
      const stored = await page.waitForFunction(async ([v, n]) => {
        const names = (await caches.keys()).filter((c) => c.startsWith('replab-sw-'));
        if (names.length !== 1 || names[0] !== `replab-sw-${v}`) return false;
        const keys = await (await caches.open(names[0])).keys();
        return keys.length === n ? { names, keys: keys.map((k) => k.url) } : false;
      }, [version, count], { timeout: 120000, polling: 500 }).then((h) => h.jsonValue());
      assert(!stored.keys.some((u) => u.includes('/models/')), 'the worker stored CLIP weights');
      await browser.setOffline(true);
      server.down(true);
      const r = await runChapter(page, `${base}/#/supervised?epochs=1&limit=192&batch_size=64&seed=7`, 900000);
      assert(await page.evaluate(() => navigator.serviceWorker.controller !== null), 'the offline page is not served by the worker');
      assert(r.probe.converged_test_b > 0.6, `offline run: converged probe ${r.probe.converged_test_b} is not above the majority class`);
      console.log(`       worker ${version}: ${count} files; offline run: converged probe test B ${r.probe.converged_test_b.toFixed(3)}`);
    } finally {
      server.down(false);
      await browser.setOffline(false);
      await page.close();
    }
    assert(errors.length === 0, errors.join('\n'));
  });
}

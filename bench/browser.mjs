// Browser speed, measured with the browser tests' tools (playwright-core and Debian's
// headless Chromium), against the native release binary on the same machine. Not a test.
//   node bench/browser.mjs dist [CHAPTERS...]     (default: supervised supcon linear-ae autoencoder conv-ae simclr)
// It reports:
//  - start-up on localhost: navigation to the wasm compiled and the page mounted, and to the
//    first bundle ready, in a fresh profile (cold cache) and after a reload (warm cache);
//  - one full CPU-fallback epoch per chapter in the page, against `replab run CHAPTER --epochs 1
//    --backend cpu` with one thread (RAYON_NUM_THREADS=1): the goal is at most 2x;
//  - with REPLAB_BENCH_WEBGPU=1, steps per second of a short supervised run on the WebGPU path.
// Writes browser-bench.json in the working directory. Needs `cargo build --release` first.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

const here = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(here, '..', 'tests', 'browser', 'package.json'));
const { chromium } = require('playwright-core');
const dist = path.resolve(process.argv[2] || 'dist');
const chapters = process.argv.length > 3 ? process.argv.slice(3) : ['supervised', 'supcon', 'linear-ae', 'autoencoder', 'conv-ae', 'simclr'];
const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'replab-target');
const native = path.join(target, 'release', 'replab');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json', '.ttf': 'font/ttf' };

function serve() {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url.split('?')[0]);
    const file = path.join(dist, url === '/' ? 'index.html' : url);
    if (!file.startsWith(dist) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404); res.end('not found'); return;
    }
    const body = fs.readFileSync(file);
    // Cacheable, as a static host would serve it, so a reload measures the warm cache.
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Content-Length': body.length, 'Cache-Control': 'max-age=3600' });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function launch(webgpu) {
  const args = ['--headless', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (webgpu) args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replab-bench-'));
  const ctx = await chromium.launchPersistentContext(dir, { executablePath: '/usr/lib/chromium/chromium', args, headless: true });
  return { ctx, page: ctx.pages()[0] || await ctx.newPage() };
}

const status = (page) => page.locator('[data-testid="status"]').first().innerText();

// Milliseconds from navigation start to the page mounted (the Run button exists) and to the
// chapter's bundle ready, measured in the page's own clock.
async function startup(page, url, reload) {
  if (reload) await page.reload(); else await page.goto(url);
  await page.waitForSelector('[data-testid="run"]', { timeout: 120000 });
  const mounted = await page.evaluate(() => performance.now());
  await page.waitForFunction(() => (document.querySelector('[data-testid="dataset-status"]')?.innerText || '').startsWith('ready'), null, { timeout: 120000 });
  const ready = await page.evaluate(() => performance.now());
  const wasm = await page.evaluate(() => performance.getEntriesByType('resource').filter((r) => r.name.endsWith('.wasm')).map((r) => ({ ms: r.duration, transfer: r.transferSize }))[0] || null);
  return { mounted_ms: mounted, bundle_ready_ms: ready, wasm };
}

async function pageEpoch(page, base, chapter, query) {
  await page.goto(`${base}/#/${chapter}?${query}`);
  await page.reload();
  await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120000 });
  await page.click('[data-testid="run"]');
  await page.waitForFunction(() => ['done', 'error', 'cancelled'].some((w) => (document.querySelector('[data-testid="status"]')?.innerText || '').startsWith(w)), null, { timeout: 1800000 });
  const s = await status(page);
  if (s !== 'done') throw new Error(`${chapter}: status '${s}'`);
  return JSON.parse(await page.locator('[data-testid="result"]').first().innerText());
}

function nativeEpoch(chapter) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'replab-native-'));
  execFileSync(native, ['run', chapter, '--epochs', '1', '--backend', 'cpu', '--out', out], { env: { ...process.env, RAYON_NUM_THREADS: '1' }, stdio: ['ignore', 'ignore', 'ignore'] });
  return JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).chapters[chapter].seconds_per_epoch;
}

const server = await serve();
const base = `http://127.0.0.1:${server.address().port}`;
const report = { startup: {}, cpu_epoch: {}, webgpu: null };
try {
  {
    const { ctx, page } = await launch(false);
    const url = `${base}/#/supervised`;
    report.startup.cold = await startup(page, url, false);
    report.startup.warm = await startup(page, url, true);
    console.log(`start-up, cold: mounted ${report.startup.cold.mounted_ms.toFixed(0)} ms, bundle ready ${report.startup.cold.bundle_ready_ms.toFixed(0)} ms`);
    console.log(`start-up, warm: mounted ${report.startup.warm.mounted_ms.toFixed(0)} ms, bundle ready ${report.startup.warm.bundle_ready_ms.toFixed(0)} ms`);
    for (const c of chapters) {
      const browser = (await pageEpoch(page, base, c, 'epochs=1&backend=cpu')).seconds_per_epoch;
      const one = nativeEpoch(c);
      report.cpu_epoch[c] = { browser, native_1_thread: one, ratio: browser / one };
      console.log(`${c}: browser CPU ${browser.toFixed(2)} s/epoch, native 1 thread ${one.toFixed(2)} s/epoch, ${(browser / one).toFixed(2)}x`);
    }
    await ctx.close();
  }
  if (process.env.REPLAB_BENCH_WEBGPU) {
    const { ctx, page } = await launch(true);
    const limit = 1024, batch = 128;
    const r = await pageEpoch(page, base, 'supervised', `epochs=1&limit=${limit}&batch_size=${batch}`);
    const steps = Math.ceil(limit / batch); // BloodMNIST's train A has more than 1024 images
    report.webgpu = { seconds_per_epoch: r.seconds_per_epoch, steps, steps_per_second: steps / r.seconds_per_epoch };
    console.log(`webgpu (SwiftShader) supervised, limit ${limit}: ${r.seconds_per_epoch.toFixed(1)} s/epoch, ${(steps / r.seconds_per_epoch).toFixed(2)} steps/s`);
    await ctx.close();
  }
} finally {
  server.close();
}
fs.writeFileSync('browser-bench.json', JSON.stringify(report, null, 1));
console.log('wrote browser-bench.json');

// Browser tests for replab: serves the trunk build, then drives Debian's headless
// Chromium twice, once with WebGPU (SwiftShader) and once without (CPU fallback).
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const dist = path.resolve(process.argv[2] || 'dist');
const expectedSplits = process.env.REPLAB_EXPECTED_SPLITS
  ? fs.readFileSync(process.env.REPLAB_EXPECTED_SPLITS, 'utf8').trim()
  : null;
const only = process.env.REPLAB_BROWSER_MODE; // "webgpu" or "cpu" to run one path
// A tiny converted CLIP tower (made by `replab convert-clip` from the open_clip fixture).
const clipFile = process.env.REPLAB_CLIP_FIXTURE ? path.resolve(process.env.REPLAB_CLIP_FIXTURE) : null;
const CLIP_URL = '/models/clip-vit-b32-int8.safetensors';
let deployClip = false; // whether the server pretends the weights are deployed
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json', '.ttf': 'font/ttf' };

function serve() {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url.split('?')[0]);
    if (url === CLIP_URL && deployClip && clipFile) {
      const body = fs.readFileSync(clipFile);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length });
      res.end(body);
      return;
    }
    let file = path.join(dist, url === '/' ? 'index.html' : url);
    if (!file.startsWith(dist) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404); res.end('not found'); return;
    }
    const body = fs.readFileSync(file);
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Content-Length': body.length });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let failures = 0;
let currentTest = '';
async function test(name, fn) {
  currentTest = name;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`  ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  } catch (e) {
    failures++;
    console.log(`  FAIL ${name}: ${e.message}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

// Distinct colours drawn on a canvas: a blank or cleared canvas has one or two.
async function canvasColours(page, testid) {
  return page.evaluate((id) => {
    const c = document.querySelector(`[data-testid="${id}"]`);
    if (!c || c.width < 20 || c.height < 20) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, testid);
}
// Sweep the mouse over a scatter until the page names the point under it.
async function hoverUntilNamed(page, testid) {
  await page.locator(`[data-testid="${testid}"]`).scrollIntoViewIfNeeded();
  const box = await page.locator(`[data-testid="${testid}"]`).boundingBox();
  let found = '';
  for (let gy = 0.2; gy < 0.9 && !found; gy += 0.03) {
    for (let gx = 0.1; gx < 0.8 && !found; gx += 0.03) {
      await page.mouse.move(box.x + box.width * gx, box.y + box.height * gy);
      found = (await text(page, 'hover')).trim();
    }
  }
  return found;
}
const text = (page, id) => page.locator(`[data-testid="${id}"]`).first().innerText();
async function waitStatus(page, want, timeout) {
  await page.waitForFunction(([w]) => {
    const s = document.querySelector('[data-testid="status"]')?.innerText || '';
    return w.some((x) => s.startsWith(x));
  }, [want], { timeout });
  return text(page, 'status');
}

async function runMode(base, mode) {
  const args = ['--headless', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
  if (mode === 'webgpu') args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader');
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'replab-chrome-'));
  const browser = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/lib/chromium/chromium', args, headless: true });
  const page = browser.pages()[0] || await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`[${currentTest}] pageerror: ${e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    // The CLIP page looks for optional deployed weights; their 404 is expected.
    if (/status of 404/.test(t) && (m.location()?.url || '').endsWith(CLIP_URL)) return;
    if (m.type() === 'error' || /panicked/.test(t)) errors.push(`[${currentTest}] console.${m.type()}: ${t.split('\n')[0]}`);
  });
  console.log(`mode ${mode}`);

  await test(`${mode}: data chapter draws class images and the notebook's split`, async () => {
    await page.goto(`${base}/#/data`);
    await page.waitForSelector('[data-testid="data-ready"]', { timeout: 120000 });
    await page.waitForFunction(() => ['webgpu', 'cpu'].includes(document.querySelector('[data-testid="backend"]')?.innerText.trim().toLowerCase()), null, { timeout: 60000 });
    const backend = (await text(page, 'backend')).trim().toLowerCase();
    assert(backend === mode, `backend is '${backend}', expected '${mode}' (${await text(page, 'backend-reason')})`);
    await page.waitForSelector('[data-testid="split-sizes"]');
    const colours = await canvasColours(page, 'samples');
    assert(colours > 200, `sample grid looks blank (${colours} colours)`);
    const sizes = (await text(page, 'split-sizes')).trim();
    if (expectedSplits) assert(sizes === expectedSplits, `split-sizes ${sizes} != replab splits ${expectedSplits}`);
    assert(JSON.parse(sizes).held_out_labels.join(',') === '7,0,5', `held-out labels ${sizes}`);
    // Changing a control updates the split live and the URL.
    await page.fill('[data-testid="labeled-ratio"]', '0.5');
    await page.dispatchEvent('[data-testid="labeled-ratio"]', 'change');
    await page.waitForFunction(() => JSON.parse(document.querySelector('[data-testid="split-sizes"]').innerText).sizes.train_a > 3000);
    assert((await page.evaluate(() => location.hash)).includes('labeled_ratio=0.5'), 'URL did not follow the control');
  });

  await test(`${mode}: a chapter not built yet says so`, async () => {
    await page.goto(`${base}/#/dino`);
    await page.waitForSelector('.notice');
    assert((await page.innerText('.notice')).includes('not built yet'), 'no notice');
  });

  await test(`${mode}: supervised chapter trains one short epoch and draws its charts`, async () => {
    await page.goto(`${base}/#/supervised?epochs=1&limit=192&batch_size=64&seed=7`);
    await page.reload();
    await page.waitForSelector('[data-testid="run"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="backend"]')?.innerText !== 'probing');
    await page.waitForTimeout(500);
    await page.click('[data-testid="run"]');
    const status = await waitStatus(page, ['done', 'error', 'cancelled'], 900000);
    assert(status === 'done', `status '${status}'`);
    const result = JSON.parse(await text(page, 'result'));
    assert(result.train_loss.length === 1 && result.train_loss.every(Number.isFinite), `train_loss ${result.train_loss}`);
    assert(result.dev_loss.every(Number.isFinite), `dev_loss ${result.dev_loss}`);
    for (const k of ['before', 'after', 'finetune_after', 'converged_dev_b', 'converged_test_b', 'random_init_test_b']) {
      assert(result.probe[k] >= 0 && result.probe[k] <= 1, `probe.${k} = ${result.probe[k]}`);
    }
    for (const id of ['loss-chart', 'umap-0', 'umap-1', 'umap-2', 'confusion-before', 'confusion-after']) {
      const c = await canvasColours(page, id);
      assert(c > 8, `${id} looks blank (${c} colours)`);
    }
    // Hovering a UMAP point names the image and shows it.
    const found = await hoverUntilNamed(page, 'umap-1');
    assert(/test image #\d+: /.test(found), `hover text '${found}'`);
    assert(await canvasColours(page, 'hover-image') > 8, 'hover image not drawn');
  });

  await test(`${mode}: cancel mid-run stops training and leaves the page usable`, async () => {
    await page.click('[data-testid="reset"]');
    await page.fill('[data-testid="param-epochs"]', '20');
    await page.dispatchEvent('[data-testid="param-epochs"]', 'change');
    await page.click('[data-testid="run"]');
    await page.waitForFunction(() => /step/.test(document.querySelector('[data-testid="stage"]')?.innerText || ''), null, { timeout: 300000 });
    await page.click('[data-testid="cancel"]');
    const status = await waitStatus(page, ['cancelled', 'error', 'done'], 120000);
    assert(status === 'cancelled', `status '${status}'`);
    await page.goto(`${base}/#/data`);
    await page.waitForSelector('[data-testid="split-sizes"]', { timeout: 60000 });
  });

  await test(`${mode}: a corrupt download is caught by its checksum and can be retried`, async () => {
    const ctx2 = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium', args, headless: true });
    const p2 = await ctx2.newPage();
    const p2errors = [];
    p2.on('pageerror', (e) => p2errors.push(e.message));
    let corrupt = true;
    await p2.route('**/data/bloodmnist/test_labels.bin', async (route) => {
      if (!corrupt) return route.continue();
      const resp = await route.fetch();
      const body = Buffer.from(await resp.body());
      body[0] ^= 0xff;
      await route.fulfill({ response: resp, body: body.subarray(0, body.length - 3) });
    });
    await p2.goto(`${base}/#/data`);
    await p2.waitForSelector('[data-testid="data-error"]', { timeout: 120000 });
    const msg = await p2.innerText('[data-testid="data-error"]');
    assert(/checksum/.test(msg), `message: ${msg}`);
    corrupt = false;
    await p2.click('[data-testid="retry"]');
    await p2.waitForSelector('[data-testid="data-ready"]', { timeout: 120000 });
    assert(p2errors.length === 0, p2errors.join('; '));
    await ctx2.close();
  });

  await test(`${mode}: CLIP chapter without weights explains how to get them`, async () => {
    deployClip = false;
    await page.goto(`${base}/#/clip`);
    await page.waitForSelector('[data-testid="clip-weights-missing"]', { timeout: 60000 });
    const msg = await text(page, 'clip-weights-missing');
    assert(/not bundled/.test(msg) && /convert-clip/.test(msg), `explanation: ${msg}`);
    assert(await page.locator('[data-testid="run"]').isDisabled(), 'run enabled without weights');
  });

  await test(`${mode}: CLIP rejects a truncated weights file with a message`, async () => {
    assert(clipFile, 'REPLAB_CLIP_FIXTURE is not set');
    const bytes = fs.readFileSync(clipFile);
    await page.setInputFiles('[data-testid="clip-file"]', { name: 'broken.safetensors', mimeType: 'application/octet-stream', buffer: bytes.subarray(0, Math.floor(bytes.length / 2)) });
    await page.waitForSelector('[data-testid="clip-weights-status"].error', { timeout: 60000 });
    const msg = await text(page, 'clip-weights-status');
    assert(/broken\.safetensors/.test(msg) && /truncated|past the end/.test(msg), `message: ${msg}`);
  });

  await test(`${mode}: CLIP loads a picked file, embeds, draws the UMAP and probes`, async () => {
    await page.goto(`${base}/#/clip?limit=20&epochs=2`);
    await page.waitForSelector('[data-testid="clip-weights-missing"]', { timeout: 60000 });
    await page.setInputFiles('[data-testid="clip-file"]', clipFile);
    await page.waitForSelector('[data-testid="clip-sha256"]', { timeout: 120000 });
    const sha = (await text(page, 'clip-sha256')).trim();
    const want = (await import('node:crypto')).createHash('sha256').update(fs.readFileSync(clipFile)).digest('hex');
    assert(sha === want, `sha256 ${sha} != ${want}`);
    const cfg = JSON.parse(await text(page, 'clip-config'));
    console.log(`    weights on the device: ${(await text(page, 'clip-store')).trim()}`);
    assert(cfg.width === 64 && cfg.layers === 2 && cfg.patch_size === 32 && cfg.image_size === 224, `config ${JSON.stringify(cfg)}`);
    await page.waitForSelector('[data-testid="data-ready"], [data-testid="clip-quote"]');
    await page.waitForFunction(() => /GFLOP/.test(document.querySelector('[data-testid="clip-quote"]')?.innerText || ''), null, { timeout: 120000 });
    await page.click('[data-testid="run"]');
    const status = await waitStatus(page, ['done', 'error', 'cancelled'], 600000);
    assert(status === 'done', `status '${status}'`);
    const r = JSON.parse(await text(page, 'result'));
    assert(r.images.join(',') === '20,20,20', `images ${r.images}`);
    assert(r.images_per_second > 0, `throughput ${r.images_per_second}`);
    for (const k of ['before', 'after', 'converged_dev_b', 'converged_test_b']) assert(r[k] >= 0 && r[k] <= 1, `${k} = ${r[k]}`);
    assert(r.train_loss.length === 2 && r.train_loss.every(Number.isFinite), `train_loss ${r.train_loss}`);
    assert(r.weights_sha256 === want, 'result names another file');
    for (const id of ['umap-0', 'loss-chart', 'confusion-before', 'confusion-after', 'confusion-converged']) {
      const c = await canvasColours(page, id);
      assert(c > 8, `${id} looks blank (${c} colours)`);
    }
    const found = await hoverUntilNamed(page, 'umap-0');
    assert(/test image #\d+: /.test(found), `hover text '${found}'`);
  });

  await test(`${mode}: CLIP remembers a chosen file after a reload`, async () => {
    deployClip = false;
    const p4 = await browser.newPage();
    await p4.goto(`${base}/#/clip`);
    await p4.waitForFunction(() => /loaded from your file from an earlier visit/.test(document.querySelector('[data-testid="clip-weights-status"]')?.innerText || ''), null, { timeout: 120000 });
    await p4.close();
  });

  await test(`${mode}: CLIP finds deployed weights by itself`, async () => {
    deployClip = true;
    const p3 = await browser.newPage();
    await p3.goto(`${base}/#/clip`);
    await p3.waitForFunction(() => /loaded from models\//.test(document.querySelector('[data-testid="clip-weights-status"]')?.innerText || ''), null, { timeout: 120000 });
    await p3.close();
    deployClip = false;
  });

  await test(`${mode}: no panic and no console error`, async () => {
    assert(errors.length === 0, errors.join('\n'));
  });
  await browser.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}

const server = await serve();
const base = `http://127.0.0.1:${server.address().port}`;
for (const mode of ['webgpu', 'cpu']) {
  if (!only || only === mode) await runMode(base, mode);
}
server.close();
if (failures) { console.log(`${failures} browser test(s) failed`); process.exit(1); }
console.log('browser tests passed');

// Browser tests for replab: serves the trunk build, then drives Debian's headless
// Chromium twice, once with WebGPU (SwiftShader) and once without (CPU fallback).
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { state, test, assert, canvasColours, hoverUntilNamed, text, waitStatus, plotColours, waitColours, canvasDigest, runChapter, fresh, setParam, stage, waitStage, result, bigBundle } from './lib.mjs';
import { savedRunTests } from './saved.mjs';
import { gpuLossTests } from './gpuloss.mjs';
import { cancelTests } from './cancel.mjs';
import { npzDropTests } from './npzdrop.mjs';
import { offlineRuns } from './offline.mjs';
import { memoryRuns } from './memory.mjs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

const dist = path.resolve(process.argv[2] || 'dist');
const expectedSplits = process.env.REPLAB_EXPECTED_SPLITS
  ? fs.readFileSync(process.env.REPLAB_EXPECTED_SPLITS, 'utf8').trim()
  : null;
const only = process.env.REPLAB_BROWSER_MODE; // "webgpu" or "cpu" to run one path
// A tiny converted CLIP tower (made by `replab convert-clip` from the open_clip fixture).
const clipFile = process.env.REPLAB_CLIP_FIXTURE ? path.resolve(process.env.REPLAB_CLIP_FIXTURE) : null;
const CLIP_URL = '/models/clip-vit-b32-int8.safetensors';
let deployClip = false; // whether the server pretends the weights are deployed
let serverDown = false; // whether the server drops every request (the offline test)
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json', '.ttf': 'font/ttf' };

function serve() {
  const server = http.createServer((req, res) => {
    if (serverDown) { req.socket.destroy(); return; }
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

async function runMode(base, mode) {
  const args = ['--headless', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
  if (mode === 'webgpu') args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader');
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'replab-chrome-'));
  const browser = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/lib/chromium/chromium', args, headless: true, acceptDownloads: true });
  const page = browser.pages()[0] || await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`[${state.current}] pageerror: ${e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    // The CLIP page looks for optional deployed weights; their 404 is expected.
    if (/status of 404/.test(t) && (m.location()?.url || '').endsWith(CLIP_URL)) return;
    if (m.type() === 'error' || /panicked/.test(t)) errors.push(`[${state.current}] console.${m.type()}: ${t.split('\n')[0]}`);
  });
  // Every request of the whole session, to check that none leaves the page's origin.
  const requests = [];
  browser.on('request', (r) => requests.push(r.url()));
  const full = mode === 'cpu'; // the WebGPU path (SwiftShader) is slow: it runs fewer tests
  console.log(`mode ${mode}`);

  await test(`${mode}: a shared chapter link works in a fresh browser: Run loads the data and trains`, async () => {
    // No visit to #/data first: the chapter page must start the download itself.
    await page.goto(`${base}/#/supervised?epochs=1&limit=192&batch_size=64&seed=7`);
    await page.waitForSelector('[data-testid="run"]');
    await page.waitForFunction(() => ['webgpu', 'cpu'].includes(document.querySelector('[data-testid="backend"]')?.innerText.trim().toLowerCase()), null, { timeout: 60000 });
    const backend = (await text(page, 'backend')).trim().toLowerCase();
    assert(backend === mode, `backend is '${backend}', expected '${mode}' (${await text(page, 'backend-reason')})`);
    await page.click('[data-testid="run"]');
    const status = await waitStatus(page, ['done', 'error', 'cancelled'], 900000);
    assert(status === 'done', `status '${status}' (${await stage(page)})`);
    const r = await result(page);
    assert(r.train_loss.length === 1 && r.train_loss.every(Number.isFinite), `train_loss ${r.train_loss}`);
    assert(r.dev_loss.every(Number.isFinite), `dev_loss ${r.dev_loss}`);
    assert(r.dev_a_accuracy >= 0 && r.dev_a_accuracy <= 1, `dev-A accuracy ${r.dev_a_accuracy}`);
    for (const k of ['before', 'after', 'finetune_after', 'converged_dev_b', 'converged_test_b', 'random_init_test_b']) {
      assert(r.probe[k] >= 0 && r.probe[k] <= 1, `probe.${k} = ${r.probe[k]}`);
    }
    // Learning happened: always guessing the commonest held-out class scores about 0.42 here.
    assert(r.probe.converged_test_b > 0.6, `converged probe ${r.probe.converged_test_b} is not above the majority class`);
    for (const id of ['loss-chart', 'chart-umap_0', 'chart-umap_1', 'chart-umap_2', 'chart-confusion_before', 'chart-confusion_after', 'chart-confusion_converged', 'chart-transfer']) {
      const c = await plotColours(page, id);
      assert(c > 6, `${id}: its plot area looks empty (${c} colours)`);
    }
    // Hovering a UMAP point names the image and shows it; the keyboard does too.
    const found = await hoverUntilNamed(page, 'chart-umap_1');
    assert(/test image #\d+: /.test(found), `hover text '${found}'`);
    assert(await canvasColours(page, 'hover-image') > 8, 'hover image not drawn');
    await page.focus('[data-testid="chart-umap_0"]');
    const before = await text(page, 'hover');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    const after = await text(page, 'hover');
    assert(/test image #\d+: /.test(after) && after !== before, `keyboard pick '${before}' -> '${after}'`);
    assert((await page.getAttribute('[data-testid="chart-umap_0"]', 'role')) === 'img', 'canvas has no role');
    // Results leave the page: results.json and a chart as PNG.
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="download-json"]')]);
    const saved = JSON.parse(fs.readFileSync(await dl.path(), 'utf8'));
    assert(saved.probe.converged_test_b === r.probe.converged_test_b, 'downloaded results.json differs');
    const [png] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="download-umap_1"]')]);
    const bytes = fs.readFileSync(await png.path());
    assert(bytes.subarray(1, 4).toString() === 'PNG' && bytes.length > 2000, `PNG of ${bytes.length} bytes`);
    // Continue is a separate action: it trains the same model one more epoch.
    if (full) {
      await page.click('[data-testid="continue"]');
      assert(await waitStatus(page, ['done', 'error', 'cancelled'], 900000) === 'done', 'continue failed');
      assert((await result(page)).epochs_trained === 2, 'continue did not continue');
    }
  });

  await test(`${mode}: a run survives parameter edits, exercises and navigation; pause, cancel and Run again`, async () => {
    await fresh(page, `${base}/#/supervised?epochs=30&limit=512&batch_size=32&seed=7`);
    await page.click('[data-testid="run"]');
    await waitStage(page, /train: epoch 1, step \d+/, 300000);
    // Editing a parameter mid-run does not touch the run.
    await setParam(page, 'seed', 9);
    await page.waitForSelector('[data-testid="pending"]');
    assert((await text(page, 'status')) === 'running', `status after edit: ${await text(page, 'status')}`);
    // An exercise button asks first (the dialog is declined here): the run carries on.
    await page.click('[data-testid="exercise-0"]');
    assert((await text(page, 'status')) === 'running', 'exercise stopped the run');
    // Navigating away and back keeps the status, the live chart and the progress.
    // The chart first has to hold a few steps (WebGPU on SwiftShader is slow to get there).
    assert(await waitColours(page, 'loss-chart', 3, 300000) > 3, 'live chart never drew the steps');
    await page.click('[data-testid="nav-data"]');
    await page.waitForSelector('[data-testid="split-sizes"]', { timeout: 60000 });
    assert(/Running: Supervised/.test(await text(page, 'run-indicator')), 'no run indicator on another page');
    await page.click('[data-testid="nav-supervised"]');
    await waitStage(page, /train: epoch/, 60000);
    assert((await text(page, 'status')) === 'running', 'status lost after navigation');
    assert(await waitColours(page, 'loss-chart', 3, 5000) > 3, 'live chart lost after navigation');
    // Pause holds the step; resume moves on.
    await page.click('[data-testid="pause"]');
    // "pausing" until the run reaches a checkpoint: on a GPU it first reports the
    // steps it had queued (up to 8, slow on SwiftShader), then "paused".
    const pausedBy = Date.now() + 180000;
    let st = await text(page, 'status');
    while (st !== 'paused' && Date.now() < pausedBy) {
      assert(st === 'pausing', `status ${st} after Pause`);
      await page.waitForTimeout(200);
      st = await text(page, 'status');
    }
    assert(st === 'paused', 'not paused');
    // The step already in flight may finish; after it, nothing moves.
    const quiet = full ? 1500 : 6000;
    let held = await stage(page);
    for (let i = 0; i < 5; i++) {
      await page.waitForTimeout(quiet);
      const now = await stage(page);
      if (now === held) break;
      held = now;
    }
    await page.waitForTimeout(quiet);
    assert((await stage(page)) === held, `steps moved while paused: ${held} -> ${await stage(page)}`);
    await page.click('[data-testid="pause"]');
    await page.waitForFunction((h) => document.querySelector('[data-testid="stage"]').innerText !== h, held, { timeout: 120000 });
    // Cancel from the header, on any page, reaches the run.
    await page.click('[data-testid="indicator-cancel"]');
    assert(await waitStatus(page, ['cancelled', 'error', 'done'], 120000) === 'cancelled', 'cancel did not reach the run');
    // Run again starts afresh from the seed, with the parameters now in the form.
    await setParam(page, 'epochs', 1);
    await setParam(page, 'limit', 192);
    await page.click('[data-testid="run"]');
    if (full) {
      assert(await waitStatus(page, ['done', 'error', 'cancelled'], 900000) === 'done', `second run: ${await stage(page)}`);
      assert((await result(page)).epochs_trained === 1, 'the run after a cancel did not start from scratch');
    } else {
      await waitStage(page, /train: epoch 1, step \d+/, 300000);
      await page.click('[data-testid="cancel"]');
      assert(await waitStatus(page, ['cancelled', 'error', 'done'], 120000) === 'cancelled', 'second cancel');
    }
  });

  if (full) await test(`${mode}: switch the dataset on a chapter page, then run SupCon on OrganAMNIST`, async () => {
    await fresh(page, `${base}/#/supcon?epochs=1&limit=192&batch_size=64`);
    await page.selectOption('[data-testid="dataset"]', 'organamnist');
    await page.waitForFunction(() => /ready/.test(document.querySelector('[data-testid="dataset-status"]')?.innerText || ''), null, { timeout: 120000 });
    assert((await page.evaluate(() => location.hash)).includes('dataset=organamnist'), 'dataset not in the URL');
    assert((await page.getAttribute('[data-testid="nav-data"]', 'href')).includes('dataset=organamnist'), 'sidebar link drops the dataset');
    await page.click('[data-testid="run"]');
    assert(await waitStatus(page, ['done', 'error', 'cancelled'], 900000) === 'done', `supcon: ${await stage(page)}`);
    const r = await result(page);
    assert(r.train_loss.every(Number.isFinite) && r.probe.confusion_converged.length >= 2, JSON.stringify(r.probe));
    assert(r.probe.converged_test_b > 1 / r.probe.confusion_converged.length, `converged ${r.probe.converged_test_b}`);
  });

  if (full) await test(`${mode}: what cannot work is refused before training, naming the parameter`, async () => {
    for (const [query, needle] of [['limit=10', /limit=10/], ['held_out_ratio=0.1', /held_out_ratio/], ['backend=webgpu&epochs=1', /backend=webgpu|no WebGPU/]]) {
      await fresh(page, `${base}/#/supervised?${query}`);
      await page.click('[data-testid="run"]');
      const status = await waitStatus(page, ['error', 'done', 'cancelled'], 120000);
      assert(needle.test(status), `${query}: status '${status}'`);
      assert(!/epoch/.test(await stage(page)), `${query}: training started (${await stage(page)})`);
    }
    await fresh(page, `${base}/#/supervised?epochs=2`);
    await setParam(page, 'epochs', 'abc');
    const msg = await text(page, 'param-error-epochs');
    assert(/epochs/.test(msg) && /keeps epochs=2/.test(msg), `typed value message: ${msg}`);
    await fresh(page, `${base}/#/supervised?epochs=zero`);
    assert(/epochs/.test(await text(page, 'url-error')), 'bad URL value not shown');
    assert(await page.locator('[data-testid="run"]').isDisabled(), 'run enabled with a bad URL');
  });

  await test(`${mode}: an unknown route and an unbuilt chapter say which they are`, async () => {
    await page.goto(`${base}/#/nonsense`);
    await page.waitForFunction(() => /No chapter called/.test(document.querySelector('h2')?.innerText || ''));
    const msg = await text(page, 'route-notice');
    assert(/supervised/.test(msg) && !/not built/.test(msg), `unknown route says: ${msg}`);
    await page.goto(`${base}/#/board`);
    await page.waitForFunction(() => /not built yet/.test(document.querySelector('[data-testid="route-notice"]')?.innerText || ''));
  });

  await test(`${mode}: data chapter draws class images and the notebook's split`, async () => {
    await fresh(page, `${base}/#/data`);
    await page.waitForSelector('[data-testid="data-ready"]', { timeout: 120000 });
    await page.waitForSelector('[data-testid="split-sizes"]');
    const colours = await canvasColours(page, 'samples');
    assert(colours > 200, `sample grid looks blank (${colours} colours)`);
    const sizes = (await text(page, 'split-sizes')).trim();
    if (expectedSplits) assert(sizes === expectedSplits, `split-sizes ${sizes} != replab splits ${expectedSplits}`);
    assert(JSON.parse(sizes).held_out_labels.join(',') === '7,0,5', `held-out labels ${sizes}`);
    await setParam(page, 'labeled_ratio', '0.5');
    await page.waitForFunction(() => JSON.parse(document.querySelector('[data-testid="split-sizes"]').innerText).sizes.train_a > 3000);
    assert((await page.evaluate(() => location.hash)).includes('labeled_ratio=0.5'), 'URL did not follow the control');
  });

  if (full) await test(`${mode}: a corrupt download is caught by its checksum and can be retried from a chapter page`, async () => {
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
    await p2.goto(`${base}/#/supervised`);
    await p2.waitForSelector('[data-testid="dataset-retry"]', { timeout: 120000 });
    const msg = await p2.innerText('[data-testid="dataset-status"]');
    assert(/checksum/.test(msg), `message: ${msg}`);
    corrupt = false;
    await p2.click('[data-testid="dataset-retry"]');
    await p2.waitForFunction(() => /ready/.test(document.querySelector('[data-testid="dataset-status"]')?.innerText || ''), null, { timeout: 120000 });
    assert(p2errors.length === 0, p2errors.join('; '));
    await ctx2.close();
  });


  if (full) await test(`${mode}: broken served bundles get a message naming what failed, and a Retry`, async () => {
    const m = JSON.parse(fs.readFileSync(path.join(dist, 'data/bloodmnist/manifest.json'), 'utf8'));
    m.test.count += 1;
    const cases = [
      ['manifest missing (404)', 'manifest.json', { status: 404, body: 'not found' }, /manifest/],
      ['manifest is not JSON', 'manifest.json', { status: 200, body: '<html>sorry</html>', contentType: 'text/html' }, /manifest/],
      ['manifest counts disagree with the blobs', 'manifest.json', { status: 200, body: JSON.stringify(m), contentType: 'application/json' }, /test_/],
      ['blob answered 404', 'val_images.bin', { status: 404, body: 'not found' }, /val_images\.bin/],
      ['blob answered 500', 'train_labels.bin', { status: 500, body: 'server error' }, /train_labels\.bin/],
    ];
    for (const [name, file, reply, needle] of cases) {
      const b = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium', args, headless: true });
      const p = await b.newPage();
      const perrors = [];
      p.on('pageerror', (e) => perrors.push(e.message));
      await p.route(`**/data/bloodmnist/${file}`, (route) => route.fulfill(reply));
      await p.goto(`${base}/#/supervised`);
      await p.waitForSelector('[data-testid="dataset-retry"]', { timeout: 120000 });
      const msg = (await p.innerText('[data-testid="dataset-status"]')).replace(/\s*Retry\s*$/, '');
      assert(needle.test(msg), `${name}: '${msg}'`);
      assert(perrors.length === 0, `${name}: ${perrors.join('; ')}`);
      console.log(`       ${name}: ${msg}`);
      await b.close();
    }
  });

  if (full) await test(`${mode}: bad URL parameters are refused naming the parameter; a diverging rate stops at a named step`, async () => {
    for (const [query, needle] of [['epochs=NaN', /epochs/], ['epochs=-1', /epochs/], ['epochs=1000000000', /epochs/], ['batch_size=0', /batch_size/], ['held_out_ratio=0', /held_out_ratio/], ['held_out_ratio=1', /held-out ratio 1|held_out_ratio/]]) {
      await fresh(page, `${base}/#/supervised?${query}`);
      await page.waitForSelector('[data-testid="run"]');
      let msg;
      if (await page.locator('[data-testid="url-error"]').count()) {
        msg = await text(page, 'url-error');
        assert(await page.locator('[data-testid="run"]').isDisabled(), `${query}: Run enabled`);
      } else {
        await page.click('[data-testid="run"]');
        msg = await waitStatus(page, ['error', 'done', 'cancelled'], 120000);
        assert(!/epoch \d/.test(await stage(page)), `${query}: training started`);
      }
      assert(needle.test(msg), `${query}: '${msg}'`);
      console.log(`       ${query}: ${msg.split('\n')[0]}`);
    }
    await fresh(page, `${base}/#/autoencoder?epochs=1&limit=64&batch_size=4&lr=1000000`);
    await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120000 });
    await page.click('[data-testid="run"]');
    const status = await waitStatus(page, ['error', 'done', 'cancelled'], 300000);
    assert(/epoch 1, step \d+/.test(status) && /weights from before/.test(status), `diverging rate: '${status}'`);
    console.log(`       lr=1000000: ${status.split('\n')[0]}`);
  });

  if (full) await test(`${mode}: a bundle of 64×64 images is refused before training, and the page lives on`, async () => {
    const ctx3 = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium', args, headless: true });
    const p3 = await ctx3.newPage();
    const p3errors = [];
    p3.on('pageerror', (e) => p3errors.push(e.message));
    const files = bigBundle(JSON.parse(fs.readFileSync(path.join(dist, 'data/bloodmnist/manifest.json'), 'utf8')));
    await p3.route('**/data/bloodmnist/*', async (route) => {
      const name = route.request().url().split('/').pop();
      await route.fulfill({ status: 200, body: files[name], contentType: 'application/octet-stream' });
    });
    await p3.goto(`${base}/#/supervised?epochs=1`);
    await p3.waitForFunction(() => /ready/.test(document.querySelector('[data-testid="dataset-status"]')?.innerText || ''), null, { timeout: 120000 });
    await p3.click('[data-testid="run"]');
    const status = await waitStatus(p3, ['error', 'done', 'cancelled'], 120000);
    assert(/64×64/.test(status) && /28×28/.test(status), `status '${status}'`);
    assert(!/epoch/.test(await stage(p3)), 'training started');
    await p3.click('[data-testid="nav-data"]');
    await p3.waitForSelector('[data-testid="samples"]');
    assert(p3errors.length === 0, p3errors.join('; '));
    await ctx3.close();
  });

  if (full) await test(`${mode}: CLIP chapter without weights explains how to get them`, async () => {
    deployClip = false;
    await fresh(page, `${base}/#/clip`);
    await page.waitForSelector('[data-testid="clip-weights-missing"]', { timeout: 60000 });
    const msg = await text(page, 'clip-weights-missing');
    assert(/not bundled/.test(msg) && /convert-clip/.test(msg), `explanation: ${msg}`);
    assert(await page.locator('[data-testid="run"]').isDisabled(), 'run enabled without weights');
  });

  if (full) await test(`${mode}: CLIP rejects a truncated weights file with a message`, async () => {
    assert(clipFile, 'REPLAB_CLIP_FIXTURE is not set');
    const bytes = fs.readFileSync(clipFile);
    await page.setInputFiles('[data-testid="clip-file"]', { name: 'broken.safetensors', mimeType: 'application/octet-stream', buffer: bytes.subarray(0, Math.floor(bytes.length / 2)) });
    await page.waitForSelector('[data-testid="clip-weights-status"].error', { timeout: 60000 });
    const msg = await text(page, 'clip-weights-status');
    assert(/broken\.safetensors/.test(msg) && /truncated|past the end/.test(msg), `message: ${msg}`);
    // A 2 GB file (sparse on disk: Chromium gets its path) is refused from its size, unread.
    const huge = path.join(os.tmpdir(), `replab-clip-huge-${process.pid}.safetensors`);
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, 2e9);
    const t0 = Date.now();
    await page.setInputFiles('[data-testid="clip-file"]', huge);
    await page.waitForFunction(() => /GB/.test(document.querySelector('[data-testid="clip-weights-status"]')?.innerText || ''), null, { timeout: 60000 });
    const big = await text(page, 'clip-weights-status');
    fs.rmSync(huge, { force: true });
    assert(/2\.0 GB, larger than any CLIP weights file/.test(big) && /not read/.test(big), `2 GB file: ${big}`);
    console.log(`       2 GB CLIP file, refused in ${Date.now() - t0} ms: ${big}`);
  });

  await test(`${mode}: CLIP loads a picked file, embeds, draws the UMAP and probes`, async () => {
    deployClip = false;
    await fresh(page, `${base}/#/clip?limit=20&epochs=2`);
    await page.waitForSelector('[data-testid="clip-weights-missing"], [data-testid="clip-weights-status"].ok', { timeout: 60000 });
    await page.setInputFiles('[data-testid="clip-file"]', clipFile);
    await page.waitForSelector('[data-testid="clip-sha256"]', { timeout: 120000 });
    const sha = (await text(page, 'clip-sha256')).trim();
    const want = (await import('node:crypto')).createHash('sha256').update(fs.readFileSync(clipFile)).digest('hex');
    assert(sha === want, `sha256 ${sha} != ${want}`);
    const cfg = JSON.parse(await text(page, 'clip-config'));
    console.log(`    weights on the device: ${(await text(page, 'clip-store')).trim()}`);
    assert(cfg.width === 64 && cfg.layers === 2 && cfg.patch_size === 32 && cfg.image_size === 224, `config ${JSON.stringify(cfg)}`);
    await page.waitForFunction(() => /GFLOP/.test(document.querySelector('[data-testid="clip-quote"]')?.innerText || ''), null, { timeout: 120000 });
    await page.waitForFunction(() => !document.querySelector('[data-testid="run"]').disabled, null, { timeout: 60000 });
    await page.click('[data-testid="run"]');
    const status = await waitStatus(page, ['done', 'error', 'cancelled'], 600000);
    assert(status === 'done', `status '${status}'`);
    const r = await result(page);
    assert(r.images.join(',') === '20,20,20', `images ${r.images}`);
    assert(r.images_per_second > 0, `throughput ${r.images_per_second}`);
    for (const k of ['before', 'after', 'converged_dev_b', 'converged_test_b']) assert(r.probe[k] >= 0 && r.probe[k] <= 1, `${k} = ${r.probe[k]}`);
    assert(r.train_loss.length === 2 && r.train_loss.every(Number.isFinite), `train_loss ${r.train_loss}`);
    assert(r.weights_sha256 === want, 'result names another file');
    for (const id of ['chart-umap_0', 'loss-chart', 'chart-confusion_before', 'chart-confusion_after', 'chart-confusion_converged']) {
      const c = await plotColours(page, id);
      assert(c > 6, `${id}: its plot area looks empty (${c} colours)`);
    }
    const found = await hoverUntilNamed(page, 'chart-umap_0');
    assert(/test image #\d+: /.test(found), `hover text '${found}'`);
  });

  if (full) await test(`${mode}: CLIP remembers a chosen file after a reload`, async () => {
    deployClip = false;
    const p4 = await browser.newPage();
    await p4.goto(`${base}/#/clip`);
    await p4.waitForFunction(() => /loaded from your file from an earlier visit/.test(document.querySelector('[data-testid="clip-weights-status"]')?.innerText || ''), null, { timeout: 120000 });
    await p4.close();
  });

  if (full) await test(`${mode}: CLIP finds deployed weights by itself`, async () => {
    deployClip = true;
    const p3 = await browser.newPage();
    await p3.goto(`${base}/#/clip`);
    await p3.waitForFunction(() => /loaded from models\//.test(document.querySelector('[data-testid="clip-weights-status"]')?.innerText || ''), null, { timeout: 120000 });
    await p3.close();
    deployClip = false;
  });

  await test(`${mode}: PCA: the 2-D demo, components, a live k slider and the variance curve`, async () => {
    await fresh(page, `${base}/#/pca?limit=400`);
    await page.waitForSelector('[data-testid="pca-demo"]');
    assert(await canvasColours(page, 'pca-demo') > 4, 'demo not drawn');
    const demo = await canvasDigest(page, 'pca-demo');
    await page.click('[data-testid="pca-demo-new"]');
    assert(await canvasDigest(page, 'pca-demo') !== demo, 'New sample did not redraw the demo');
    assert(await page.locator('[data-testid="loss-chart"]').count() === 0, 'PCA trains nothing, yet shows a loss chart');
    const r = await runChapter(page, `${base}/#/pca?limit=400`, 600000);
    const cum = r.cumulative_explained_variance;
    assert(cum.length === 128 && cum[0] > 0.1 && cum[127] > 0.9 && cum[127] <= 1.000001, `cumulative ${cum[0]} … ${cum[127]}`);
    for (const k of ['probe_pca', 'probe_pixels']) {
      assert(r[k].converged_test_b > 0.6, `${k} test B ${r[k].converged_test_b}`);
    }
    assert(await canvasColours(page, 'chart-components') > 50, 'component grid blank');
    assert(await plotColours(page, 'chart-umap_0') > 6, 'PCA UMAP blank');
    assert(await canvasColours(page, 'pca-recon') > 50, 'reconstructions blank');
    assert(await canvasColours(page, 'pca-variance') > 4, 'variance curve blank');
    const k90 = r.components_for_90;
    assert(new RegExp(`k = ${k90} of 128`).test(await text(page, 'pca-k-readout')), `slider does not start at k90=${k90}: ${await text(page, 'pca-k-readout')}`);
    const before = await canvasDigest(page, 'pca-recon');
    await page.locator('[data-testid="pca-k"]').fill('1');
    await page.waitForFunction(() => /k = 1 of/.test(document.querySelector('[data-testid="pca-k-readout"]').innerText));
    assert(await canvasDigest(page, 'pca-recon') !== before, 'moving k did not change the reconstruction');
    const atOne = await canvasDigest(page, 'pca-recon');
    await page.selectOption('[data-testid="pca-split"]', '2');
    assert(await canvasDigest(page, 'pca-recon') !== atOne, 'switching to test images did not redraw');
    // Hovering the curve reads a value off it.
    const box = await page.locator('[data-testid="pca-variance"]').boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.6);
    assert(/k = \d+ of 128: \d+\.\d% of the variance/.test(await text(page, 'pca-k-readout')), 'hover readout');
  });

  await test(`${mode}: the linear autoencoder against PCA: W Wᵀ, components and angles draw`, async () => {
    const r = await runChapter(page, `${base}/#/linear-ae?epochs=2&limit=256&batch_size=32`, 900000);
    assert(r.train_loss.length === 2 && r.train_loss[1] < r.train_loss[0], `train_loss ${r.train_loss}`);
    // Learning happened: the dev reconstruction error fell from the first epoch to the second.
    assert(r.dev_loss[1] < r.dev_loss[0] && r.reconstruction_mse > 0, `dev_loss ${r.dev_loss}`);
    assert(r.principal_angles_mean_per_epoch.length === 2, 'angles per epoch');
    for (const id of ['chart-gram', 'chart-learned_components', 'chart-pca_components', 'chart-reconstructions']) {
      assert(await canvasColours(page, id) > 20, `${id} blank`);
    }
    assert(await plotColours(page, 'chart-angles') > 3, 'angles chart blank');
  });

  await test(`${mode}: one short convolutional autoencoder run finishes, reconstructs and transfers`, async () => {
    const r = await runChapter(page, `${base}/#/conv-ae?epochs=1&limit=128&batch_size=64`, 900000);
    assert(r.train_loss.length === 1 && Number.isFinite(r.reconstruction_mse), `mse ${r.reconstruction_mse}`);
    for (const k of ['before', 'after', 'finetune_after', 'converged_test_b', 'random_init_test_b']) {
      assert(r.probe[k] >= 0 && r.probe[k] <= 1, `probe.${k} = ${r.probe[k]}`);
    }
    assert(await canvasColours(page, 'chart-reconstructions') > 20, 'reconstructions blank');
    assert(await plotColours(page, 'chart-transfer') > 3, 'freeze vs fine-tune chart blank');
  });

  await test(`${mode}: the augmentation gallery draws 16 distinct views, and its toggles change them`, async () => {
    await fresh(page, `${base}/#/simclr`);
    const distinct = () => page.evaluate(() => document.querySelector('[data-testid="aug-gallery"]')?.dataset.distinct || '');
    await page.waitForFunction(() => document.querySelector('[data-testid="aug-gallery"]')?.dataset.distinct === '16', null, { timeout: 120000 });
    assert(await canvasColours(page, 'aug-gallery') > 50, 'gallery blank');
    const first = await canvasDigest(page, 'aug-gallery');
    await page.click('[data-testid="aug-new"]');
    await page.waitForFunction((d) => {
      const c = document.querySelector('[data-testid="aug-gallery"]');
      const x = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let h = 0; for (let i = 0; i < x.length; i++) h = (h * 31 + x[i]) | 0;
      return `${c.width}x${c.height}:${h}` !== d;
    }, first, { timeout: 60000 });
    // Every transform off: sixteen copies of the image, none distinct.
    for (const id of ['crop', 'h-flip', 'v-flip', 'colour-jitter', 'grayscale', 'blur']) await page.click(`[data-testid="aug-${id}"]`);
    await page.waitForFunction(() => document.querySelector('[data-testid="aug-gallery"]')?.dataset.distinct === '0', null, { timeout: 60000 });
    // Colour jitter alone makes every view different again.
    await page.click('[data-testid="aug-colour-jitter"]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="aug-gallery"]')?.dataset.distinct) >= 15, null, { timeout: 60000 });
    assert(Number(await distinct()) >= 15, `jitter alone: ${await distinct()} distinct`);
  });

  await test(`${mode}: one short SimCLR epoch finishes with finite losses and transfers`, async () => {
    const r = await runChapter(page, `${base}/#/simclr?epochs=1&limit=64&batch_size=32`, 900000);
    assert(r.train_loss.length === 1 && Number.isFinite(r.train_loss[0]) && Number.isFinite(r.dev_loss[0]), `losses ${r.train_loss} ${r.dev_loss}`);
    // NT-Xent over 64 views starts near ln 63.
    assert(r.train_loss[0] > 2 && r.train_loss[0] < 6, `train loss ${r.train_loss[0]}`);
    assert(r.monitors['embedding spread'].every(Number.isFinite), 'spread');
    for (const k of ['before', 'after', 'finetune_after', 'converged_test_b', 'random_init_test_b']) {
      assert(r.probe[k] >= 0 && r.probe[k] <= 1, `probe.${k} = ${r.probe[k]}`);
    }
    assert(await plotColours(page, 'monitor-chart-0') > 3, 'live spread chart blank');
    assert(await plotColours(page, 'chart-umap_2') > 6, 'projection UMAP blank');
  });

  await test(`${mode}: one short DINO epoch finishes with finite losses, collapse signals and a teacher probe`, async () => {
    const r = await runChapter(page, `${base}/#/dino?epochs=1&limit=64&batch_size=32`, 900000);
    assert(r.train_loss.length === 1 && Number.isFinite(r.train_loss[0]) && Number.isFinite(r.dev_loss[0]), `losses ${r.train_loss} ${r.dev_loss}`);
    const h = r.monitors['teacher entropy (nats)'][0];
    assert(h > 0 && h <= Math.log(256) + 1e-3, `teacher entropy ${h}`);
    assert(r.teacher_probe.converged_test_b >= 0 && r.teacher_probe.converged_test_b <= 1, 'teacher probe');
    assert(r.probe.converged_test_b >= 0 && r.probe.converged_test_b <= 1, 'student probe');
    for (const id of ['monitor-chart-0', 'monitor-chart-1']) assert(await plotColours(page, id) > 3, `${id} blank`);
    assert(await plotColours(page, 'chart-umap_2') > 6, 'teacher UMAP blank');
  });

  if (full) await test(`${mode}: the MLP autoencoder's bottleneck exercise runs with an 8-d code`, async () => {
    await fresh(page, `${base}/#/autoencoder?epochs=1&limit=256&batch_size=64`);
    await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120000 });
    await page.click('[data-testid="exercise-0"]');
    assert(await waitStatus(page, ['done', 'error', 'cancelled'], 600000) === 'done', `status (${await stage(page)})`);
    const r = await result(page);
    assert(r.latent_dim === 8 && (await page.evaluate(() => location.hash)).includes('latent_dim=8'), `latent_dim ${r.latent_dim}`);
    assert(r.kept_probe_dev_a > 0 && r.kept_probe_dev_a <= 1, `kept probe ${r.kept_probe_dev_a}`);
    assert(await plotColours(page, 'chart-umap_0') > 6, 'UMAP of the code blank');
    // The sweep's next bottleneck: both runs side by side in the runs table.
    await page.click('[data-testid="exercise-1"]');
    assert(await waitStatus(page, ['done', 'error', 'cancelled'], 600000) === 'done', `status (${await stage(page)})`);
    assert((await result(page)).latent_dim === 32, 'second bottleneck');
    for (const id of ['run-recon-0', 'run-recon-1']) assert(await canvasColours(page, id) > 20, `${id} blank`);
    assert(await canvasDigest(page, 'run-recon-0') !== await canvasDigest(page, 'run-recon-1'), 'the two bottlenecks reconstruct identically');
  });

  await cancelTests({ page, base, mode, full });
  if (full) await savedRunTests({ page, base, mode, context: browser });
  // The data page's converter of the user's own .npz (the CPU run only: it is not about the backend).
  if (mode === 'cpu') await npzDropTests(page, base, mode);
  if (full) await offlineRuns(browser, base, dist, { down: (d) => { serverDown = d; } });

  await memoryRuns(page, base, mode);
  // Last before the policy checks: after a lost GPU the page runs on the CPU.
  if (mode === 'webgpu') await gpuLossTests({ page, base, mode, context: browser });

  await test(`${mode}: the page runs under a Content-Security-Policy without unsafe-inline, and no request leaves its origin`, async () => {
    const html = fs.readFileSync(path.join(dist, 'index.html'), 'utf8');
    const m = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)">/);
    assert(m, 'the built index.html has no Content-Security-Policy meta');
    const csp = m[1];
    assert(!/'unsafe-inline'|'unsafe-eval'/.test(csp), `the policy allows inline code or eval: ${csp}`);
    assert(/script-src 'self' 'wasm-unsafe-eval' 'sha256-/.test(csp), `the loader is not allowed by its hash: ${csp}`);
    assert(/connect-src 'self'/.test(csp) && /default-src 'self'/.test(csp), `the policy lets requests leave the origin: ${csp}`);
    // A violation is a console error, which the last test fails on; the app mounting at all
    // (every test above) shows the hash matches the loader.
    const origin = (u) => { try { const x = new URL(u); return ['data:', 'blob:'].includes(x.protocol) ? x.protocol : x.origin; } catch { return u; } };
    const origins = [...new Set(requests.map(origin))];
    const foreign = origins.filter((o) => o !== base && o !== 'data:' && o !== 'blob:');
    assert(requests.length > 10, `only ${requests.length} requests were recorded`);
    assert(foreign.length === 0, `requests left the origin: ${foreign.join(', ')}`);
    console.log(`       ${requests.length} requests, origins: ${origins.join(', ')}`);
  });

  await test(`${mode}: no panic and no console error`, async () => {
    assert(errors.length === 0, errors.join('\n'));
  });
  await browser.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}

const server = await serve();
const base = `http://127.0.0.1:${server.address().port}`;
for (const mode of ['cpu', 'webgpu']) {
  if (!only || only === mode) await runMode(base, mode);
}
server.close();
if (state.failures) { console.log(`${state.failures} browser test(s) failed`); process.exit(1); }
console.log('browser tests passed');

// Helpers shared by the browser test files: the test runner, assertions, and reads of
// the page (status, stage, canvases).
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

// Shared by every test file: the outcome counters and the test now running.
export const state = { failures: 0, current: '' };
export async function test(name, fn) {
  // REPLAB_BROWSER_GREP narrows a development run to matching tests; each skipped test
  // is named, and CI never sets it.
  const grep = process.env.REPLAB_BROWSER_GREP;
  if (grep && !new RegExp(grep).test(name)) { console.log(`  skip ${name} (REPLAB_BROWSER_GREP)`); return; }
  state.current = name;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`  ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  } catch (e) {
    state.failures++;
    console.log(`  FAIL ${name}: ${e.message}`);
  }
}
export function assert(cond, msg) { if (!cond) throw new Error(msg); }

// Distinct colours drawn on a canvas: a blank or cleared canvas has one or two.
export async function canvasColours(page, testid) {
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
export async function hoverUntilNamed(page, testid) {
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
export const text = (page, id) => page.locator(`[data-testid="${id}"]`).first().innerText();
export async function waitStatus(page, want, timeout) {
  await page.waitForFunction(([w]) => {
    const s = document.querySelector('[data-testid="status"]')?.innerText || '';
    return w.some((x) => s.startsWith(x));
  }, [want], { timeout });
  return text(page, 'status');
}


// Distinct colours inside the plot area (the middle of the canvas, away from the
// title, axes and legend): a chart with only its frame drawn has almost none.
export async function plotColours(page, testid) {
  return page.evaluate((id) => {
    const c = document.querySelector(`[data-testid="${id}"]`);
    if (!c || c.width < 20 || c.height < 20) return 0;
    const x0 = Math.floor(c.width * 0.25), y0 = Math.floor(c.height * 0.3);
    const w = Math.floor(c.width * 0.45), h = Math.floor(c.height * 0.4);
    const d = c.getContext('2d').getImageData(x0, y0, w, h).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 3) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, testid);
}
export async function waitColours(page, testid, min, timeout) {
  const end = Date.now() + timeout;
  for (;;) {
    const c = await plotColours(page, testid);
    if (c > min) return c;
    if (Date.now() > end) return c;
    await page.waitForTimeout(250);
  }
}
// A digest of a canvas's pixels, to see whether a redraw changed them.
export async function canvasDigest(page, testid) {
  return page.evaluate((id) => {
    const c = document.querySelector(`[data-testid="${id}"]`);
    if (!c || c.width < 20) return '';
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) | 0;
    return `${c.width}x${c.height}:${h}`;
  }, testid);
}
// Open a chapter link fresh, press Run, and wait for the run to finish.
export async function runChapter(page, url, timeout) {
  await fresh(page, url);
  await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120000 });
  await page.click('[data-testid="run"]');
  const status = await waitStatus(page, ['done', 'error', 'cancelled'], timeout);
  assert(status === 'done', `status '${status}' (${await stage(page)})`);
  return result(page);
}
export async function fresh(page, url) {
  await page.goto(url);
  await page.reload();
}
export async function setParam(page, name, value) {
  await page.fill(`[data-testid="param-${name}"]`, String(value));
  await page.dispatchEvent(`[data-testid="param-${name}"]`, 'change');
}
export const stage = (page) => text(page, 'stage');
export async function waitStage(page, re, timeout) {
  await page.waitForFunction((src) => new RegExp(src).test(document.querySelector('[data-testid="stage"]')?.innerText || ''), re.source, { timeout });
}
export const result = async (page) => JSON.parse(await text(page, 'result'));

// A valid replab bundle of 64×64 images (MedMNIST+ size), made here: the lab must
// refuse it before training with a message, not hit a shape panic in burn.
export function bigBundle(manifest28) {
  const zlib = require('node:zlib');
  const crypto = require('node:crypto');
  const m = JSON.parse(JSON.stringify(manifest28));
  const files = {};
  m.size = 64;
  for (const [split, n] of [['train', 160], ['val', 80], ['test', 80]]) {
    const k = m.class_names.length;
    const labels = Buffer.alloc(n);
    for (let i = 0; i < n; i++) labels[i] = i % k;
    const images = Buffer.alloc(n * m.channels * 64 * 64);
    for (let i = 0; i < images.length; i++) images[i] = (i * 31) % 251;
    const counts = new Array(k).fill(0);
    for (const l of labels) counts[l]++;
    m[split].count = n;
    m[split].class_counts = counts;
    for (const [key, raw] of [['images', images], ['labels', labels]]) {
      const body = zlib.deflateRawSync(raw);
      files[m[split][key].file] = body;
      m[split][key].sha256 = crypto.createHash('sha256').update(body).digest('hex');
      m[split][key].bytes = body.length;
    }
  }
  files['manifest.json'] = Buffer.from(JSON.stringify(m));
  return files;
}

// Many runs in one page, as an afternoon in one tab would make them: chapters mixed,
// some cancelled mid-epoch, some reset first. After each run the page's memory is
// recorded: the wasm linear memory (the app's [data-testid="memory"] readout), the JS
// heap after a forced garbage collection (CDP), and burn's device allocator where the
// backend reports it (WebGPU). Once warm, memory must stay flat: at most 10% growth
// from the warm-up run to the last. The figures are printed as a table.
import { test, assert, stage, waitStatus } from './lib.mjs';

const ALL = ['supervised', 'supcon', 'linear-ae', 'autoencoder', 'conv-ae', 'simclr', 'dino'];
const MB = (b) => (b == null ? null : b / (1024 * 1024));
const fmt = (x) => (x == null ? '-' : x.toFixed(1));

// The CPU path: 50 runs of every chapter, every fourth cancelled and every fifth reset
// first; growth judged from run 10 (DINO, four times slower a step, sees half the images).
// WebGPU (SwiftShader, slow): 10 tiny runs of three quick chapters, judged from run 3,
// once each chapter has run (each keeps its trained model on the device, for Continue).
const cpuSteps = Array.from({ length: 50 }, (_, i) => ({ slug: ALL[i % ALL.length], cancel: i % 4 === 3, reset: i % 5 === 4 }));
const S = (slug, cancel = false, reset = false) => ({ slug, cancel, reset });
const gpuSteps = [S('linear-ae'), S('autoencoder'), S('supervised', true), S('linear-ae'), S('autoencoder', false, true),
  S('supervised', true), S('linear-ae', true), S('autoencoder'), S('supervised', true, true), S('linear-ae')];
const PLANS = {
  cpu: { steps: cpuSteps, warm: 10, limit: (slug) => (slug === 'dino' ? 128 : 256), batch: 64, cancelBatch: 16 },
  webgpu: { steps: gpuSteps, warm: 3, limit: () => 128, batch: 32, cancelBatch: 32 },
};

async function figures(page, cdp) {
  await cdp.send('HeapProfiler.collectGarbage');
  const heap = await cdp.send('Runtime.getHeapUsage');
  const m = JSON.parse(await page.locator('[data-testid="memory"]').textContent());
  return { wasm: MB(m.wasm_bytes), heap: MB(heap.usedSize), device: MB(m.device_in_use), reserved: MB(m.device_reserved) };
}

// One run of `slug` on the page already open: reset first or cancel mid-epoch when asked.
async function oneRun(page, slug, query, { reset, cancel }) {
  // A hash change: the same page, never reloaded.
  await page.evaluate((h) => { location.hash = h; }, `#/${slug}?${query}`);
  await page.waitForFunction((q) => location.hash.endsWith(q) && document.querySelector('[data-testid="run"]') && !document.querySelector('[data-testid="run"]').disabled, query, { timeout: 120000 });
  if (reset) {
    await page.click('[data-testid="reset"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.innerText === 'idle', null, { timeout: 60000 });
  }
  // Run sets the status to "waiting: …" at once, so a status left by an earlier run
  // of this chapter is not mistaken for this one's.
  await page.click('[data-testid="run"]');
  if (cancel) {
    // Cancel at the first step: a run may also finish before the page sees one (the
    // quick chapters take a few milliseconds a step), which counts as a run, not a cancel.
    await page.waitForFunction(() => /train: epoch 1, step \d+/.test(document.querySelector('[data-testid="stage"]')?.innerText || '')
      || /^(done|error|cancelled)/.test(document.querySelector('[data-testid="status"]')?.innerText || ''), null, { timeout: 300000, polling: 20 });
    if ((await page.locator('[data-testid="cancel"]').isEnabled())) await page.click('[data-testid="cancel"]');
  }
  const status = await waitStatus(page, ['done', 'error', 'cancelled'], 600000);
  const want = cancel ? ['cancelled', 'done'] : ['done'];
  assert(want.includes(status), `${slug} (${query}): status '${status}' (${await stage(page)})`);
  return status;
}

/** Register the many-runs memory test for `mode` ("cpu" or "webgpu"). */
export async function memoryRuns(page, base, mode) {
  const plan = PLANS[mode];
  await test(`${mode}: ${plan.steps.length} runs in one page (mixed chapters, cancels, resets) keep memory flat`, async () => {
    const cdp = await page.context().newCDPSession(page);
    await page.goto(`${base}/#/data`);
    await page.waitForFunction(() => ['webgpu', 'cpu'].includes(document.querySelector('[data-testid="backend"]')?.innerText.trim().toLowerCase()), null, { timeout: 60000 });
    const rows = [];
    const t0 = Date.now();
    for (const [i, { slug, cancel, reset }] of plan.steps.entries()) {
      // On the CPU a cancelled run takes smaller batches, so its first step comes well
      // before its last; SwiftShader's steps are slow enough as they are.
      const query = `epochs=1&limit=${plan.limit(slug)}&batch_size=${cancel ? plan.cancelBatch : plan.batch}&seed=${i}`;
      const t = Date.now();
      const status = await oneRun(page, slug, query, { reset, cancel });
      const f = await figures(page, cdp);
      const what = `${slug}${reset ? ' (reset)' : ''}${status === 'cancelled' ? ' (cancelled)' : ''}`;
      const r = { run: i + 1, what, ...f, seconds: (Date.now() - t) / 1000 };
      rows.push(r);
      if (i === 0) console.log('       run  chapter                         wasm MB  JS heap MB  device MB (reserved)  s');
      console.log(`       ${String(r.run).padStart(3)}  ${r.what.padEnd(30)}  ${fmt(r.wasm).padStart(7)}  ${fmt(r.heap).padStart(10)}  ${fmt(r.device).padStart(9)} (${fmt(r.reserved)})  ${r.seconds.toFixed(1)}`);
    }
    await cdp.detach();
    console.log(`       ${plan.steps.length} runs in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const warm = rows[plan.warm - 1];
    const last = rows[rows.length - 1];
    const growth = (k) => (warm[k] == null || last[k] == null ? null : last[k] / warm[k] - 1);
    for (const [k, name] of [['wasm', 'wasm memory'], ['heap', 'JS heap'], ['device', 'device memory in use']]) {
      const g = growth(k);
      if (g == null) continue;
      console.log(`       ${name}: ${fmt(warm[k])} MB after run ${plan.warm}, ${fmt(last[k])} MB after run ${plan.steps.length} (${(100 * g).toFixed(1)}%)`);
      assert(g <= 0.1, `${name} grew ${(100 * g).toFixed(1)}% from run ${plan.warm} to run ${plan.steps.length}`);
    }
    if (mode === 'webgpu') assert(last.device != null, 'the WebGPU device reported no memory use');
  });
}

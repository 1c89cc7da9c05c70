// Cancel anywhere in the page, then run again: the run ends with the numbers of an
// uninterrupted run from the same seed (within 1e-6 on the CPU path, 1e-3 on WebGPU).
// The cancel points are drawn from a seeded generator over the stages of a run.
import { test, assert, text, waitStatus, fresh, result, runChapter } from './lib.mjs';

// mulberry32: a small seeded generator, so the cancel points are the same every run.
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Where a run can be cut: the main training at a drawn step, and every later stage.
const STAGES = [
  (r) => new RegExp(`^train: epoch ${1 + Math.floor(r() * 2)}, step ${1 + Math.floor(r() * 3)} `),
  () => /^(extracting test features|measuring dev-A accuracy)/,
  () => /^UMAP of/,
  () => /^probe: epoch/,
  () => /^finetune: epoch/,
  () => /^transfer: the same probe on an untrained encoder/,
];

function compare(label, a, b, tol) {
  const pairs = [
    ['epochs', a.epochs_trained, b.epochs_trained],
    ['dev-A accuracy', a.dev_a_accuracy, b.dev_a_accuracy],
    ...a.train_loss.map((x, i) => [`train loss ${i}`, x, b.train_loss[i]]),
    ...a.dev_loss.map((x, i) => [`dev loss ${i}`, x, b.dev_loss[i]]),
    ...['before', 'after', 'finetune_after', 'converged_dev_b', 'converged_test_b', 'random_init_test_b']
      .map((k) => [`probe ${k}`, a.probe[k], b.probe[k]]),
  ];
  for (const [what, x, y] of pairs) {
    assert(x === y || Math.abs(x - y) <= tol, `${label}: ${what} ${x} vs ${y}`);
  }
}

export async function cancelTests({ page, base, mode, full }) {
  await test(`${mode}: cancelled at seeded points in every stage, a run again ends with the uninterrupted numbers`, async () => {
    const url = full
      ? `${base}/#/supervised?epochs=2&limit=192&batch_size=64&seed=21`
      : `${base}/#/supervised?epochs=1&limit=128&batch_size=64&seed=21`;
    const tol = full ? 1e-6 : 1e-3;
    const reference = await runChapter(page, url, 900000);
    const r = generator(14);
    // The CPU path tries four points; the WebGPU path (slow in SwiftShader) one.
    const picks = full ? [0, 1 + Math.floor(r() * 2), 3 + Math.floor(r() * 3), 2] : [2];
    const where = [];
    for (const k of picks) {
      const re = STAGES[k](r);
      await fresh(page, url);
      await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120000 });
      await page.click('[data-testid="run"]');
      await page.waitForFunction((src) => new RegExp(src).test(document.querySelector('[data-testid="stage"]')?.innerText || ''), re.source, { timeout: 900000, polling: 20 });
      await page.click('[data-testid="cancel"]');
      const cut = await waitStatus(page, ['cancelled', 'done', 'error'], 300000);
      const at = await text(page, 'stage');
      assert(cut !== 'error', `cancel at ${re.source}: ${cut}`);
      where.push(`${re.source.replace(/[\^\\]/g, '')} (${cut})`);
      if (cut === 'cancelled') {
        assert(/cancelled/.test(at), `stage after the cancel: ${at}`);
        await page.click('[data-testid="run"]');
        assert(await waitStatus(page, ['done', 'error', 'cancelled'], 900000) === 'done', `run again: ${await text(page, 'stage')}`);
      }
      compare(`cancelled at ${re.source}`, reference, await result(page), tol);
    }
    console.log(`       cancelled at: ${where.join('; ')}; all within ${tol} of the uninterrupted run`);
  });
}

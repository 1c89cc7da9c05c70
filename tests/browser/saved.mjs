// Saved runs in the browser: save a finished run in the origin-private file system,
// find it after a reload, load it (analysed at once to the saved numbers), continue it,
// export it for `replab run --load`, import a run that replab saved natively, and refuse
// a full quota or a wrong file with a message while the run on the page is kept.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, assert, text, waitStatus, fresh, result } from './lib.mjs';

const URL_SUP = 'supervised?epochs=1&limit=192&batch_size=64&seed=7&backend=cpu';

async function openPanel(page) {
  await page.waitForSelector('[data-testid="saved-runs"]');
  await page.evaluate(() => { document.querySelector('[data-testid="saved-runs"]').open = true; });
}
async function waitMessage(page, re, timeout = 120000) {
  await page.waitForFunction((src) => new RegExp(src).test(document.querySelector('[data-testid="saved-message"]')?.innerText || ''), re.source, { timeout });
  return text(page, 'saved-message');
}
const close = (a, b, tol) => Math.abs(a - b) <= tol;

export async function savedRunTests({ page, base, mode, context }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'replab-saved-'));
  let first = null;

  await test(`${mode}: a finished run is saved in the browser, listed after a reload, loaded to its numbers and continued`, async () => {
    await fresh(page, `${base}/#/${URL_SUP}`);
    await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120000 });
    await page.click('[data-testid="run"]');
    assert(await waitStatus(page, ['done', 'error', 'cancelled'], 600000) === 'done', `run: ${await text(page, 'stage')}`);
    first = await result(page);
    await openPanel(page);
    await page.click('[data-testid="save-run"]');
    const saved = await waitMessage(page, /saved in this browser|not saved/);
    assert(/saved in this browser: Supervised.* after 1 epoch/.test(saved), `save: ${saved}`);
    // A reload loses the tab's model; the saved run stays.
    await fresh(page, `${base}/#/${URL_SUP}`);
    await openPanel(page);
    await page.waitForSelector('[data-testid="saved-row"]', { timeout: 60000 });
    const row = await text(page, 'saved-row');
    assert(/Supervised/.test(row) && /bloodmnist/.test(row) && /MB/.test(row), `listed as: ${row}`);
    await page.click('[data-testid="saved-load"]');
    assert(await waitStatus(page, ['done', 'error', 'cancelled'], 600000) === 'done', `load: ${await text(page, 'saved-message')} ${await text(page, 'stage')}`);
    const loaded = await result(page);
    assert(loaded.epochs_trained === 1, `the loaded run trained again: ${loaded.epochs_trained} epochs`);
    assert(close(loaded.probe.converged_test_b, first.probe.converged_test_b, 1e-6), `test B ${loaded.probe.converged_test_b} vs ${first.probe.converged_test_b}`);
    assert(close(loaded.train_loss[0], first.train_loss[0], 1e-9), 'the history did not travel');
    await page.click('[data-testid="continue"]');
    assert(await waitStatus(page, ['done', 'error', 'cancelled'], 600000) === 'done', `continue: ${await text(page, 'stage')}`);
    assert((await result(page)).epochs_trained === 2, 'continuing did not add an epoch');
    console.log(`       saved, reloaded and loaded: test B ${loaded.probe.converged_test_b.toFixed(4)} (saved ${first.probe.converged_test_b.toFixed(4)})`);
  });

  await test(`${mode}: an exported run is read by replab natively, and a run replab saved loads in the page`, async () => {
    await openPanel(page);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-run"]')]);
    const file = path.join(tmp, 'exported.safetensors');
    await download.saveAs(file);
    const out = path.join(tmp, 'out');
    const cli = spawnSync('cargo', ['run', '--quiet', '--', 'run', 'supervised', '--load', file, '--out', out], { encoding: 'utf8' });
    assert(cli.status === 0, `replab run --load: ${cli.stderr.slice(-600)}`);
    const native = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).chapters.supervised;
    const page2 = await result(page);
    assert(native.epochs_trained === 2, `the CLI sees ${native.epochs_trained} epochs`);
    assert(close(native.probe.converged_test_b, page2.probe.converged_test_b, 0.02), `CLI test B ${native.probe.converged_test_b} vs page ${page2.probe.converged_test_b}`);
    console.log(`       CLI evaluates the browser's run: test B ${native.probe.converged_test_b.toFixed(4)} (page ${page2.probe.converged_test_b.toFixed(4)})`);
    // The other way: the run replab saved natively (tests/fixtures/saved), imported here.
    const fixture = path.resolve('tests/fixtures/saved/supervised.safetensors');
    page.once('dialog', (d) => d.accept()); // it replaces the model trained in this tab
    await page.setInputFiles('[data-testid="import-run"]', fixture);
    const msg = await waitMessage(page, /^loaded|not imported/, 300000);
    console.log(`       imported: ${msg}`);
    assert(/^loaded Supervised.* \(1 epochs on bloodmnist\)/.test(msg), `import: ${msg}`);
    assert(await waitStatus(page, ['done', 'error', 'cancelled'], 600000) === 'done', `imported run: ${await text(page, 'stage')}`);
    const imported = await result(page);
    const cliSaved = JSON.parse(spawnSync('node', ['-e', `
      const b = require('fs').readFileSync(${JSON.stringify(fixture)});
      const n = Number(b.readBigUInt64LE(0));
      process.stdout.write(JSON.parse(b.subarray(8, 8 + n).toString()).__metadata__['replab.result']);`], { encoding: 'utf8' }).stdout);
    assert(close(imported.probe.converged_test_b, cliSaved.probe.converged_test_b, 0.02), `page ${imported.probe.converged_test_b} vs CLI ${cliSaved.probe.converged_test_b}`);
    assert(/seed=3/.test(await page.evaluate(() => location.hash)), 'the page did not take the saved parameters');
  });

  await test(`${mode}: a full quota and a wrong file are refused with a message; the run on the page is kept`, async () => {
    const before = await result(page);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: base, quotaSize: 1024 });
    await openPanel(page);
    await page.click('[data-testid="save-run"]');
    const full = await waitMessage(page, /saved in this browser|not saved/);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: base });
    assert(/not saved/.test(full) && /full or its quota was denied/.test(full) && /Export/.test(full), `quota: ${full}`);
    console.log(`       quota of 1 kB: ${full}`);
    assert(await text(page, 'status') === 'done', 'the run on the page was lost');
    assert(JSON.stringify(await result(page)) === JSON.stringify(before), 'the result changed');
    const cases = [
      ['CLIP weights', fs.readFileSync('tests/fixtures/clip/openclip_tiny.safetensors'), /not a replab saved run/],
      ['truncated', fs.readFileSync('tests/fixtures/saved/supervised.safetensors').subarray(0, 100000), /truncated|past the end/],
      ['not safetensors', Buffer.from('hello, this is text'), /not a safetensors file/],
    ];
    for (const [name, bytes, needle] of cases) {
      await page.setInputFiles('[data-testid="import-run"]', { name: `${name}.safetensors`, mimeType: 'application/octet-stream', buffer: bytes });
      const msg = await waitMessage(page, /^not imported|^loaded/);
      assert(needle.test(msg), `${name}: ${msg}`);
      console.log(`       ${name}: ${msg}`);
    }
    assert(JSON.stringify(await result(page)) === JSON.stringify(before), 'a refused import changed the run');
    // Delete empties the list of what this test saved.
    page.on('dialog', (d) => d.accept());
    while (await page.locator('[data-testid="saved-delete"]').count()) {
      const n = await page.locator('[data-testid="saved-row"]').count();
      await page.click('[data-testid="saved-delete"]');
      await page.waitForFunction((k) => document.querySelectorAll('[data-testid="saved-row"]').length < k, n, { timeout: 30000 });
    }
    page.removeAllListeners('dialog');
  });
  fs.rmSync(tmp, { recursive: true, force: true });
}

// The data page's converter: official MedMNIST .npz files dropped or picked on #/data,
// written here (a stored zip of .npy arrays, the layout of tests/common/npz.rs), good
// and broken. Each case's message is printed for the record.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { test, assert, text, canvasColours, waitStatus, stage, result } from './lib.mjs';

// One .npy array (format 1.0, header padded to 64 bytes).
function npy(descr, shape, data) {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${dims}, }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const head = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(head, 0);
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

// A stored (uncompressed) zip of [name, bytes] members, as numpy.savez writes.
function zip(members) {
  const parts = []; const central = []; let offset = 0;
  for (const [name, data] of members) {
    const crc = zlib.crc32(data);
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0); dir.writeUInt16LE(20, 4); dir.writeUInt16LE(20, 6);
    dir.writeUInt32LE(crc, 16); dir.writeUInt32LE(data.length, 20); dir.writeUInt32LE(data.length, 24);
    dir.writeUInt16LE(n.length, 28); dir.writeUInt32LE(offset, 42);
    parts.push(local, n, data);
    central.push(dir, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(members.length, 8); end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}

// A BloodMNIST-shaped split (RGB, 8 classes): each class has its own colour and stripe
// direction and period, with noise, so a short run can tell them apart.
const PALETTE = [[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60], [200, 60, 200], [60, 200, 200], [230, 140, 40], [120, 120, 120]];
function split(n, seed, labelShape) {
  let s = seed >>> 0;
  const rand = () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const labels = Buffer.alloc(n);
  const images = Buffer.alloc(n * 28 * 28 * 3);
  for (let i = 0; i < n; i++) {
    const c = (i * 5 + seed) % 8;
    labels[i] = c;
    const period = 3 + (c % 4), vertical = c % 2 === 1, phase = Math.floor(rand() * period);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
      const on = Math.floor(((vertical ? x : y) + phase) / period) % 2;
      for (let ch = 0; ch < 3; ch++) {
        const v = PALETTE[c][ch] * (0.55 + 0.45 * on) + (rand() - 0.5) * 40;
        images[((i * 28 + y) * 28 + x) * 3 + ch] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return [npy('|u1', [n, 28, 28, 3], images), npy('|u1', labelShape === 1 ? [n] : [n, 1], labels)];
}
// Members of a whole file: n images per split (train gets 4n), labels (N, 1) unless flat.
function members(n, { flat = false } = {}) {
  const m = [];
  for (const [name, count, seed] of [['train', 4 * n, 1], ['val', n, 2], ['test', n, 3]]) {
    const [img, lab] = split(count, seed, flat ? 1 : 2);
    m.push([`${name}_images.npy`, img], [`${name}_labels.npy`, lab]);
  }
  return m;
}
const replace = (m, key, data) => m.map(([k, v]) => [k, k === key ? data : v]);

// Hand a file to the page: by the file input, or by a drop event carrying it.
async function pick(page, name, buffer) {
  await page.setInputFiles('[data-testid="npz-file"]', { name, mimeType: 'application/octet-stream', buffer });
}
async function dropFile(page, name, buffer) {
  await page.evaluate(([n, b64]) => {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], n));
    const zone = document.querySelector('[data-testid="npz-drop"]');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, [name, buffer.toString('base64')]);
}
// The outcome for file `name`: the refusal or the success line that names it.
async function outcome(page, name, timeout = 120000) {
  await page.waitForFunction((n) => {
    const e = document.querySelector('[data-testid="npz-error"]')?.innerText || '';
    const ok = document.querySelector('[data-testid="npz-ready"]')?.innerText || '';
    return e.includes(n) || ok.includes(n);
  }, name, { timeout });
  const err = await page.locator('[data-testid="npz-error"]').count();
  return err ? { refused: true, message: await text(page, 'npz-error') } : { refused: false, message: await text(page, 'npz-ready') };
}

export async function npzDropTests(page, base, mode) {
  const KEY = 'bloodmnist-file';
  const good = [...members(300), ['train_masks.npy', npy('|u1', [2], Buffer.from([0, 1]))]];
  const small = members(12);
  const smallZip = zip(small);
  const stillThere = async (what) => {
    const ready = await text(page, 'data-ready');
    assert(/BloodMNIST \(your file\)/.test(ready), `after ${what} the converted dataset is gone: ${ready}`);
    const options = await page.$$eval('[data-testid="dataset"] option', (os) => os.map((o) => o.value));
    assert(options.includes(KEY), `after ${what} the picker lost ${KEY}: ${options}`);
  };

  await test(`${mode}: npz drop: an official-shaped npz dropped on #/data converts, with its notes, and shows its images`, async () => {
    await page.goto(`${base}/#/data`);
    await page.reload();
    await page.waitForSelector('[data-testid="npz-drop"]');
    const bytes = zip(good);
    const t0 = Date.now();
    await dropFile(page, 'bloodmnist.npz', bytes);
    const r = await outcome(page, 'bloodmnist.npz');
    assert(!r.refused, `refused: ${r.message}`);
    assert(/train 1200, val 300, test 300/.test(r.message) && r.message.includes(`'${KEY}'`), `summary: ${r.message}`);
    const notes = await text(page, 'npz-notes');
    assert(/ignored the array 'train_masks'/.test(notes), `notes: ${notes}`);
    console.log(`       ${(bytes.length / 1e6).toFixed(1)} MB converted in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${r.message}`);
    console.log(`       notes: ${notes.replace(/\n/g, ' | ')}`);
    assert((await page.evaluate(() => location.hash)).includes(`dataset=${KEY}`), 'the page did not switch to the converted dataset');
    await page.waitForFunction(() => /your file/.test(document.querySelector('[data-testid="data-ready"]')?.innerText || ''), null, { timeout: 30000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="samples"]')?.width > 20, null, { timeout: 30000 });
    assert(await canvasColours(page, 'samples') > 20, 'sample grid of the converted dataset blank');
    await page.waitForSelector('[data-testid="split-sizes"]');
  });

  await test(`${mode}: npz drop: labels shaped (N,) are accepted too (through the file input), as a second dataset`, async () => {
    await pick(page, 'bloodmnist (1).npz', zip(members(12, { flat: true })));
    const o = await outcome(page, 'bloodmnist (1).npz');
    assert(!o.refused, `refused: ${o.message}`);
    // A different file does not replace the first one: runs trained on it keep their data.
    assert(o.message.includes(`'${KEY}2'`), `a second file: ${o.message}`);
    console.log(`       ${o.message}`);
    // The first file again is the first dataset again.
    await pick(page, 'bloodmnist.npz', zip(good));
    const again = await outcome(page, 'Converted bloodmnist.npz');
    assert(!again.refused && again.message.includes(`'${KEY}'`), `the first file again: ${again.message}`);
    const options = await page.$$eval('[data-testid="dataset"] option', (os) => os.map((o) => o.value));
    assert(options.includes(KEY) && options.includes(`${KEY}2`), `picker: ${options}`);
  });

  // Refusals: [case, file name, bytes, expected message, dataset chosen in the page].
  const floats = npy('<f4', [48, 28, 28, 3], Buffer.alloc(48 * 784 * 3 * 4));
  const high = Buffer.from(split(12, 3, 2)[1]); high[high.length - 12 + 3] = 8;
  const cases = [
    ['a truncated file (cut at half)', 'bloodmnist-truncated.npz', smallZip.subarray(0, smallZip.length >> 1), /not a valid \.npz.*truncated|truncated.*not a zip/],
    ['not a zip', 'bloodmnist-text.npz', Buffer.from('train_images,train_labels\n1,2\n'), /not a valid \.npz \(zip\) file/],
    ['a zip with a bad CRC', 'bloodmnist-crc.npz', (() => { const b = Buffer.from(smallZip); b[200] ^= 0x5a; return b; })(), /corrupt: CRC mismatch/],
    ['a missing key', 'bloodmnist-nokey.npz', zip(small.filter(([k]) => k !== 'val_labels.npy')), /missing key 'val_labels'/],
    ['float images', 'bloodmnist-float.npz', zip(replace(small, 'train_images.npy', floats)), /train_images: dtype is <f4, expected uint8/],
    ['64×64 images (MedMNIST+)', 'bloodmnist_64.npz', zip(replace(small, 'train_images.npy', npy('|u1', [48, 64, 64, 3], Buffer.alloc(48 * 64 * 64 * 3)))), /64×64 images \(MedMNIST\+\).*28×28/],
    ['labels out of range', 'bloodmnist-labels.npz', zip(replace(small, 'test_labels.npy', high)), /test_labels: label 8 at index 3 is outside 0\.\.8/],
    ['an empty split', 'bloodmnist-empty.npz', zip(replace(replace(small, 'test_images.npy', npy('|u1', [0, 28, 28, 3], Buffer.alloc(0))), 'test_labels.npy', npy('|u1', [0, 1], Buffer.alloc(0)))), /the test split is empty/],
    ['a name no dataset has', 'mydata.npz', smallZip, /cannot tell which MedMNIST dataset/],
    ['the wrong dataset chosen (RGB file as OrganAMNIST)', 'bloodmnist-as-organ.npz', smallZip, /has 3 channel\(s\) but OrganAMNIST images have 1/, 'organamnist'],
    ['a multi-label dataset (ChestMNIST)', 'chestmnist.npz', smallZip, /multi-label/],
  ];
  for (const [what, name, bytes, want, chosen] of cases) {
    await test(`${mode}: npz drop: ${what} is refused with a message, and the converted dataset stays`, async () => {
      await page.selectOption('[data-testid="npz-name"]', chosen || '');
      await pick(page, name, bytes);
      const o = await outcome(page, name);
      await page.selectOption('[data-testid="npz-name"]', '');
      assert(o.refused, `accepted: ${o.message}`);
      assert(want.test(o.message), `message: ${o.message}`);
      console.log(`       ${o.message}`);
      await stillThere(what);
    });
  }

  await test(`${mode}: npz drop: a file over the size cap is refused from its size, before it is read`, async () => {
    // A sparse file: 1.5 GiB on disk with no blocks; Chromium's File is backed by the path.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replab-npz-'));
    const file = path.join(dir, 'bloodmnist.npz');
    const fd = fs.openSync(file, 'w'); fs.ftruncateSync(fd, 3 * 2 ** 29); fs.closeSync(fd);
    try {
      const t0 = Date.now();
      await page.setInputFiles('[data-testid="npz-file"]', file);
      await page.waitForFunction(() => /larger than any/.test(document.querySelector('[data-testid="npz-error"]')?.innerText || ''), null, { timeout: 30000 });
      const msg = await text(page, 'npz-error');
      assert(/bloodmnist\.npz is 1\.61 GB, larger than any MedMNIST 2-D npz \(1\.07 GB at most\); it was not read/.test(msg), `message: ${msg}`);
      console.log(`       ${msg} (${Date.now() - t0} ms)`);
      await stillThere('the oversized file');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  await test(`${mode}: npz drop: after every refusal a supervised run trains on the converted file above chance`, async () => {
    await page.evaluate((k) => { location.hash = `#/supervised?dataset=${k}&epochs=1&labeled_ratio=1&batch_size=16&seed=3`; }, KEY);
    await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 60000 });
    assert(/ready/.test(await text(page, 'dataset-status')), `dataset status: ${await text(page, 'dataset-status')}`);
    await page.click('[data-testid="run"]');
    const status = await waitStatus(page, ['done', 'error', 'cancelled'], 900000);
    assert(status === 'done', `status '${status}' (${await stage(page)})`);
    const r = await result(page);
    const kA = 6; // held_out_ratio=0.3 of 8 classes keeps 5 or 6
    console.log(`       dev-A accuracy ${r.dev_a_accuracy.toFixed(3)}, converged probe on test B ${r.probe.converged_test_b.toFixed(3)}`);
    assert(r.dev_a_accuracy > 2 / kA, `dev-A accuracy ${r.dev_a_accuracy} is not above chance (1/${kA})`);
    assert(r.probe.converged_test_b > 0.6, `converged probe ${r.probe.converged_test_b}`);
  });

  await test(`${mode}: npz drop: a link naming a converted dataset, opened in another tab, says to drop the file again`, async () => {
    const tab = await page.context().newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    try {
      await tab.goto(`${base}/#/supervised?dataset=${KEY}&epochs=1&limit=64`);
      await tab.waitForFunction(() => /again/.test(document.querySelector('[data-testid="dataset-status"]')?.innerText || ''), null, { timeout: 60000 });
      const msg = await text(tab, 'dataset-status');
      assert(msg.includes(`'${KEY}'`) && /drop the file on #\/data again/.test(msg), `status: ${msg}`);
      await tab.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 60000 });
      await tab.click('[data-testid="run"]');
      const status = await waitStatus(tab, ['done', 'error', 'cancelled'], 60000);
      assert(/drop the file on #\/data again/.test(status), `run status: ${status}`);
      console.log(`       ${msg}`);
      assert(errors.length === 0, errors.join('; '));
    } finally {
      await tab.close();
    }
  });

  // Optional: a real official file (e.g. REPLAB_REAL_NPZ=../shared/medmnist/bloodmnist.npz),
  // timed, with the longest the page went without running a timer while converting it.
  const real = process.env.REPLAB_REAL_NPZ;
  if (real) await test(`${mode}: npz drop: the real ${path.basename(real)} converts in the page`, async () => {
    await page.goto(`${base}/#/data`);
    await page.reload();
    await page.waitForSelector('[data-testid="npz-file"]');
    await page.evaluate(() => {
      // The longest gap, and what the page showed just before it (the stage that held it).
      window.__gap = 0; window.__during = ''; let last = performance.now(), shown = '';
      window.__timer = setInterval(() => {
        const t = performance.now();
        if (t - last > window.__gap) { window.__gap = t - last; window.__during = shown; }
        last = t;
        shown = document.querySelector('[data-testid="npz-status"]')?.innerText || document.querySelector('[data-testid="npz-ready"]') && 'the page drawing the new dataset' || '';
      }, 10);
    });
    const t0 = Date.now();
    await page.setInputFiles('[data-testid="npz-file"]', real);
    const o = await outcome(page, path.basename(real), 600000);
    const [gap, during] = await page.evaluate(() => { clearInterval(window.__timer); return [window.__gap, window.__during.trim()]; });
    console.log(`       ${o.refused ? 'REFUSED ' : ''}${(fs.statSync(real).size / 1e6).toFixed(1)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s, longest stall ${gap.toFixed(0)} ms (after '${during}'): ${o.message}`);
    assert(!o.refused || process.env.REPLAB_REAL_NPZ_REFUSED, o.message);
  });
}

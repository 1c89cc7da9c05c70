// trunk post-build hook (Trunk.toml), run after csp.mjs: write sw.js, the service worker
// that keeps the app usable offline after a first visit (its code is sw-worker.js). It
// lists every file of the build with its SHA-256 and carries a version that hashes them
// all, so any change to the build (index.html included, policy and all) gives a new
// version, and the browser replaces the old cache. The optional CLIP weights (models/)
// are never listed: they are the user's to fetch.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = 'sw.js';

// Every file under `dir`, as sorted '/'-separated paths, leaving out the worker itself,
// models/ and dotfiles.
export function listFiles(dir) {
  const out = [];
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.name.startsWith('.') || p === WORKER || p === 'models') continue;
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push(p);
    }
  };
  walk('');
  return out.sort();
}

// The worker's source for the build in `dir`, with its version and file list.
export function workerFor(dir) {
  const files = {};
  const all = crypto.createHash('sha256');
  for (const p of listFiles(dir)) {
    const hash = `sha256-${crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, p))).digest('base64')}`;
    files[p] = hash;
    all.update(`${p}\0${hash}\n`);
  }
  const version = all.digest('hex').slice(0, 20);
  const code = fs.readFileSync(path.join(here, 'sw-worker.js'), 'utf8');
  const source = `const VERSION = '${version}';\nconst FILES = ${JSON.stringify(files, null, 1)};\n${code}`;
  return { version, files, source };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.env.TRUNK_STAGING_DIR || process.argv[2];
  if (!dir) {
    console.error('sw: no TRUNK_STAGING_DIR (run as a trunk hook, or pass the folder)');
    process.exit(1);
  }
  if (!fs.existsSync(path.join(dir, 'index.html'))) {
    console.error(`sw: ${dir} has no index.html; run after the build has written it`);
    process.exit(1);
  }
  const { version, files, source } = workerFor(dir);
  fs.writeFileSync(path.join(dir, WORKER), source);
  console.log(`sw: ${WORKER} version ${version}, ${Object.keys(files).length} files`);
}

// trunk post-build hook (Trunk.toml): give the built index.html a Content-Security-Policy
// as a <meta http-equiv>, allowing trunk's inline module loader by its SHA-256 rather than by
// 'unsafe-inline'. The hash is computed here, after trunk has written the loader, so it always
// matches what is served. WebAssembly compilation needs 'wasm-unsafe-eval'; nothing needs
// 'unsafe-eval', and every request stays on the page's origin.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const dir = process.env.TRUNK_STAGING_DIR || process.argv[2];
if (!dir) {
  console.error('csp: no TRUNK_STAGING_DIR (run as a trunk hook, or pass the folder)');
  process.exit(1);
}
const file = path.join(dir, 'index.html');
let html = fs.readFileSync(file, 'utf8');
if (html.includes('http-equiv="Content-Security-Policy"')) {
  console.error('csp: index.html already has a policy');
  process.exit(1);
}
// Every inline script (one without src): trunk's loader, and anything added later.
const hashes = [];
for (const m of html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)) {
  hashes.push(`'sha256-${crypto.createHash('sha256').update(m[1], 'utf8').digest('base64')}'`);
}
if (hashes.length === 0) {
  console.error('csp: found no inline loader script; has trunk changed its output?');
  process.exit(1);
}
const policy = [
  "default-src 'self'",
  `script-src 'self' 'wasm-unsafe-eval' ${hashes.join(' ')}`,
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
const meta = `<meta http-equiv="Content-Security-Policy" content="${policy}">`;
// Before anything that loads: right after the charset declaration.
const anchor = /<meta charset="utf-8">/i;
if (!anchor.test(html)) {
  console.error('csp: index.html has no <meta charset="utf-8"> to place the policy after');
  process.exit(1);
}
html = html.replace(anchor, (m) => `${m}\n  ${meta}`);
fs.writeFileSync(file, html);
console.log(`csp: policy written with ${hashes.length} script hash(es)`);

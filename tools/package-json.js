'use strict';
// Writes the package.json of function.zip: the repository's package.json plus the names of
// the functions the binary registers (`rustFunctions`), so that index.js can export them
// when the process is not meant to serve. Usage: node tools/package-json.js BINARY OUT
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const [binary, out] = process.argv.slice(2);
if (!binary || !out) {
  console.error('usage: node tools/package-json.js BINARY OUT');
  process.exit(2);
}
const listing = execFileSync(binary, ['--list-functions'], {
  encoding: 'utf8',
  env: { ...process.env, RUST_LOG: 'off' },
});
const functions = JSON.parse(listing.trim().split('\n').pop());
const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
manifest.rustFunctions = functions;
fs.writeFileSync(out, `${JSON.stringify(manifest, null, 2)}\n`);

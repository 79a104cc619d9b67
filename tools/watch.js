'use strict';
// Serves a function crate and rebuilds it whenever its sources change: `make dev`.
// Usage: node tools/watch.js CRATE_DIR [BIN]
// The running server gets SIGTERM (it drains) before the new build starts. Build errors are
// shown and the watcher waits for the next change. Ctrl-C stops everything.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const crate = path.resolve(process.argv[2] || 'function');
const bin = process.argv[3] || 'function';
const manifest = path.join(crate, 'Cargo.toml');
if (!fs.existsSync(manifest)) {
  console.error(`no Cargo.toml in ${crate}: give the function crate's folder`);
  process.exit(2);
}

let server = null;
let building = null;
let pending = false;
let stopping = false;

function log(message) {
  process.stderr.write(`[watch] ${message}\n`);
}

function stopServer() {
  if (!server) return Promise.resolve();
  const running = server;
  server = null;
  return new Promise((resolve) => {
    const timer = setTimeout(() => running.kill('SIGKILL'), 10000);
    running.once('exit', () => { clearTimeout(timer); resolve(); });
    running.kill('SIGTERM');
  });
}

async function rebuild() {
  if (building) { pending = true; return; }
  building = (async () => {
    await stopServer();
    log(`building ${crate}`);
    const cargo = spawn('cargo', ['build', '--manifest-path', manifest, '--bin', bin, '--message-format=json-render-diagnostics'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let executable = null;
    let buffer = '';
    cargo.stdout.on('data', (d) => {
      buffer += d;
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const line of lines) {
        try {
          const message = JSON.parse(line);
          if (message.reason === 'compiler-artifact' && message.executable && message.target && message.target.name === bin) executable = message.executable;
        } catch (_) { /* not JSON */ }
      }
    });
    const code = await new Promise((resolve) => cargo.on('exit', resolve));
    if (stopping) return;
    if (code !== 0 || !executable) { log('build failed: waiting for a change'); return; }
    log(`serving ${executable}`);
    server = spawn(executable, [], { stdio: 'inherit' });
    server.on('exit', (exitCode, signal) => { if (server && !stopping) log(`server exited (${exitCode ?? signal}): waiting for a change`); });
  })();
  await building;
  building = null;
  if (pending && !stopping) { pending = false; rebuild(); }
}

let debounce = null;
function changed(file) {
  if (!file || /(^|\/)(target|\.git)(\/|$)|~$|\.swp$/.test(file)) return;
  clearTimeout(debounce);
  debounce = setTimeout(() => { log(`changed: ${file}`); rebuild(); }, 200);
}

fs.watch(crate, { recursive: true }, (_event, file) => changed(file));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    stopping = true;
    await stopServer();
    process.exit(0);
  });
}
rebuild();

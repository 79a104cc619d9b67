'use strict';
// function.zip as the cloud gets it: its entries, the glibc its ELF files need, a deployment
// rehearsal with the official launcher, and `make test`'s flow.

const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { test, afterEach } = require('node:test');

const { ROOT, LAUNCHER, onCleanup, functionEnv, start, cleanup, freePort, sleep, request, waitForHttp, exeOf } = require('./helpers');

const ZIP = path.join(ROOT, 'function.zip');
const packaging = require(path.join(ROOT, 'tools', 'package.js'));
const ENTRIES = packaging.entries('node').slice().sort();
const BINARY_ENTRY = `${packaging.FOLDER}/function-server`;

afterEach(cleanup);

/** name -> unix mode of each entry, read from the zip's central directory. */
function zipModes(zip) {
  const script = 'import json,sys,zipfile\n'
    + 'z=zipfile.ZipFile(sys.argv[1])\n'
    + 'print(json.dumps({i.filename: (i.external_attr >> 16) & 0o7777 for i in z.infolist()}))';
  return JSON.parse(execFileSync('python3', ['-c', script, zip], { encoding: 'utf8' }));
}

function newestGlibc(file) {
  const symbols = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const versions = [...symbols.matchAll(/GLIBC_([0-9.]+)/g)].map((m) => m[1].split('.').map(Number));
  versions.sort((a, b) => a[0] - b[0] || (a[1] || 0) - (b[1] || 0) || (a[2] || 0) - (b[2] || 0));
  return versions.length ? versions[versions.length - 1] : null;
}

function unzipped() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-deploy-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  execFileSync('unzip', ['-q', ZIP, '-d', dir]);
  return dir;
}

test('function.zip holds exactly the package, the binary is 0755, every ELF needs at most GLIBC_2.17', () => {
  const modes = zipModes(ZIP);
  assert.deepEqual(Object.keys(modes).sort(), ENTRIES);
  assert.equal(modes[BINARY_ENTRY], 0o755);
  assert.equal(modes[`${packaging.FOLDER}/launcher.js`], 0o755);
  const dir = unzipped();
  for (const elf of [BINARY_ENTRY, `${packaging.FOLDER}/shim.node`]) {
    const newest = newestGlibc(path.join(dir, elf));
    assert.ok(newest, `${elf}: no GLIBC symbol versions found`);
    assert.ok(newest[0] === 2 && (newest[1] || 0) <= 17, `${elf} needs GLIBC_${newest.join('.')}`);
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  assert.equal(manifest.main, 'index.js');
  assert.deepEqual(manifest.dependencies, { '@google-cloud/functions-framework': `file:./${packaging.FOLDER}` },
    'the one dependency is the package\'s own launcher folder');
  assert.equal(manifest.scripts, undefined, 'no install scripts');
  const folder = JSON.parse(fs.readFileSync(path.join(dir, packaging.FOLDER, 'package.json'), 'utf8'));
  assert.deepEqual(folder.bin, { 'functions-framework': 'launcher.js' });
  assert.equal(folder.scripts, undefined, 'no install scripts in the folder either');
  const lock = JSON.parse(fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8'));
  assert.deepEqual(lock.packages['node_modules/@google-cloud/functions-framework'], { resolved: packaging.FOLDER, link: true });
  assert.deepEqual(manifest.rustFunctions, [{ name: 'hello', signatureType: 'http' }]);
  assert.ok(fs.statSync(ZIP).size <= 5 * 1024 * 1024, 'function.zip is at most 5 MiB');
});

/** What the cloud's builder does with an upload: npm, no Rust toolchain on PATH. */
function build(dir) {
  const pathWithoutRust = (process.env.PATH || '').split(':').filter((p) => !/cargo|rustup/.test(p)).join(':');
  const env = { ...process.env, PATH: pathWithoutRust };
  execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env });
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env });
  return env;
}

for (const executable of [true, false]) {
  test(`deployment rehearsal: unzip, npm ci, official launcher serves the Rust function${executable ? '' : ' (exec bit stripped)'}`, async () => {
    const dir = unzipped();
    if (!executable) fs.chmodSync(path.join(dir, BINARY_ENTRY), 0o644);
    const env = build(dir);
    const port = await freePort();
    const launcher = start(process.execPath, [LAUNCHER, '--target=hello'], {
      cwd: dir,
      env: functionEnv({ PATH: env.PATH, FUNCTION_TARGET: 'hello', FUNCTION_SIGNATURE_TYPE: 'http', PORT: String(port), K_SERVICE: 'hello', K_REVISION: 'hello-00001', K_CONFIGURATION: 'hello' }),
    });
    const reply = await waitForHttp(port, launcher, '/?name=Cloud');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'Hello, Cloud!\n');
    const exe = exeOf(launcher.pid);
    if (executable) assert.equal(exe, path.join(dir, BINARY_ENTRY));
    else assert.match(exe, /memfd:function-server/);
  });
}

test('make test: /execute first answers "User function is ready", then the Rust function; Ctrl-C stops it', async () => {
  const port = await freePort();
  const make = spawn('make', ['-s', 'test', `PORT=${port}`], {
    cwd: ROOT,
    env: functionEnv({}),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  make.stdout.on('data', (d) => { output += d; });
  make.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => make.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const started = Date.now();
    while (!output.includes(`http://localhost:${port}/execute`)) {
      assert.ok(Date.now() - started < 600000, `make test did not start: ${output}`);
      assert.equal(make.exitCode, null, `make test exited: ${output}`);
      await sleep(50);
    }
    const first = await request(port, { path: '/execute' });
    assert.deepEqual([first.status, first.body], [200, 'User function is ready']);
    const second = await request(port, { path: '/execute' });
    assert.deepEqual([second.status, second.body], [200, 'Hello, World!\n']);
    process.kill(-make.pid, 'SIGINT');
    const result = await Promise.race([exited, sleep(15000).then(() => 'timeout')]);
    assert.notEqual(result, 'timeout', 'make test did not stop on Ctrl-C');
    await assert.rejects(request(port, { path: '/execute' }), /ECONNREFUSED/);
    assert.match(output, /draining/);
  } finally {
    if (make.exitCode === null && make.signalCode === null) {
      try { process.kill(-make.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    }
  }
});

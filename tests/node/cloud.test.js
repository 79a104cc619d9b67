'use strict';
// The cloud's build and launch, emulated from a function zip alone in an empty folder, as the
// Node.js build of Cloud Functions does it (GoogleCloudPlatform/buildpacks: the npm and
// functions-framework buildpacks): unzip; `npm ci` (after `npm install --package-lock-only`
// when there is no lockfile); `node --check` of the entry file; the build-time require of the
// bytecode-cache step; then the web process `/bin/bash -c node_modules/.bin/functions-framework`
// with the instance's environment. Also the injected path: a package without the
// @google-cloud/functions-framework dependency gets Functions Framework 3.5.1 from a layer of
// its own, with NODE_PATH at the app's node_modules.

const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { test, afterEach } = require('node:test');

const {
  ROOT, SHIM, BINARY, onCleanup, start, cleanup, freePort, request, waitForHttp, exeOf,
} = require('./helpers');
const packaging = require(path.join(ROOT, 'tools', 'package.js'));

afterEach(cleanup);

/** The layer the build installs Functions Framework 3.5.1 into (`make node-deps`). */
const INJECTED_LAYER = path.join(__dirname, 'injected-ff');
const BYTECODE_CACHE = path.join(__dirname, 'fixtures', 'bytecode-cache.js');
/** The zips `make check` builds from the release binary of function/ (hello). */
const RELEASE_ZIPS = { node: path.join(ROOT, 'function.zip'), direct: path.join(ROOT, 'build', 'function-direct.zip') };

function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A zip of test-functions (HTTP and CloudEvent targets) with the debug build, made the way
 * `make` makes function.zip. */
function testFunctionsZip(launcher) {
  const work = tempDir('ff-zip-');
  const stageDir = path.join(work, 'stage');
  const zip = path.join(work, 'function.zip');
  packaging.stage({ binary: BINARY, shim: SHIM, launcher, dir: stageDir });
  packaging.zip(stageDir, zip, launcher);
  return zip;
}

/** The build machine: npm and node, no Rust toolchain. */
function buildEnv(extra = {}) {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(PORT|FUNCTION_|K_|FUNCTIONS_FRAMEWORK_|GOOGLE_|CNB_|NODE_OPTIONS|NODE_PATH)/.test(name)) delete env[name];
  }
  env.PATH = (env.PATH || '').split(':').filter((p) => !/cargo|rustup/.test(p)).join(':');
  return { ...env, ...extra };
}

function run(command, args, options) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120000, ...options });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed (${result.status} ${result.signal}): ${result.stdout}${result.stderr}`);
  return result;
}

/**
 * Unzips `zip` into an empty folder and builds it as the cloud does. `dependency: false`
 * removes the package's Functions Framework dependency (and so its lockfile), the case where
 * the build injects its own.
 */
function cloudBuild(zip, { lockfile = true, dependency = true, target = 'hello' } = {}) {
  const app = tempDir('ff-app-');
  execFileSync('unzip', ['-q', zip, '-d', app]);
  if (!dependency) {
    const manifestPath = path.join(app, 'package.json');
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    delete manifest.dependencies;
    fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  }
  if (!lockfile || !dependency) fs.rmSync(path.join(app, 'package-lock.json'), { force: true });
  const env = buildEnv({ GOOGLE_FUNCTION_TARGET: target, NODE_ENV: 'production' });
  if (!fs.existsSync(path.join(app, 'package-lock.json'))) {
    run('npm', ['install', '--package-lock-only', '--quiet'], { cwd: app, env });
  }
  run('npm', ['ci', '--quiet', '--no-fund', '--no-audit'], { cwd: app, env });
  const entry = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')).main || 'index.js';
  run(process.execPath, ['--check', path.join(app, entry)], { cwd: app, env });
  return { app, entry };
}

/** The bytecode-cache step: the entry file required at build time, which must return. */
function buildTimeRequire(app, entry, extra = {}) {
  const env = buildEnv({
    PORT: '8080', GOOGLE_FUNCTION_TARGET: 'hello', CNB_BUILDPACK_DIR: '/cnb/buildpacks/google.nodejs.functions-framework',
    CNB_BP_PLAN_PATH: '/tmp/plan.toml', CNB_LAYERS_DIR: '/layers/google.nodejs.functions-framework', ...extra,
  });
  const started = Date.now();
  const result = spawnSync(process.execPath, [BYTECODE_CACHE, path.join(app, entry), '.google_node_compile_cache'], {
    cwd: app, env, encoding: 'utf8', timeout: 20000,
  });
  return { ...result, ms: Date.now() - started };
}

/** The instance's environment, as Cloud Functions (gen2) sets it. */
function instanceEnv(port, target, signature, extra = {}) {
  return buildEnv({
    PORT: String(port), FUNCTION_TARGET: target, FUNCTION_SIGNATURE_TYPE: signature, K_SERVICE: target,
    K_REVISION: `${target}-00001-abc`, K_CONFIGURATION: target, NODE_ENV: 'production',
    NODE_OPTIONS: '--max-old-space-size=192', RUST_LOG: 'info', ...extra,
  });
}

/** `/bin/bash -c <launcher>` in the app folder: the runtime's web process. */
async function launch(app, launcherPath, port, target, signature, extra = {}) {
  const env = instanceEnv(port, target, signature, extra);
  env.PATH = `${path.join(app, 'node_modules', '.bin')}:${env.PATH}`;
  const child = start('/bin/bash', ['-c', launcherPath], { cwd: app, env });
  return child;
}

function childrenOf(pid) {
  return fs.readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((entry) => {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
    } catch (_) {
      return false;
    }
  });
}

/** Serves from the Rust binary on the launched PID, with nothing else left running. */
function assertServedByRust(child, app) {
  assert.equal(exeOf(child.pid), path.join(app, packaging.FOLDER, 'function-server'), 'the launched PID is the Rust binary');
  assert.deepEqual(childrenOf(child.pid), [], 'no Node.js (or any) process left beside it');
}

async function drains(child) {
  process.kill(child.pid, 'SIGTERM');
  assert.deepEqual(await child.exited, { code: 0, signal: null });
  assert.match(child.output, /draining/);
}

const CLOUD_EVENT = {
  'ce-specversion': '1.0', 'ce-id': 'emulated-1', 'ce-source': '//pubsub.googleapis.com/projects/p/topics/t',
  'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished', 'content-type': 'application/json',
};

for (const launcher of packaging.LAUNCHERS) {
  for (const lockfile of [true, false]) {
    test(`${launcher} launcher, ${lockfile ? 'with' : 'without'} the lockfile: the cloud build succeeds, the build-time require returns, the launched PID serves from Rust and drains`, async () => {
      const { app, entry } = cloudBuild(RELEASE_ZIPS[launcher], { lockfile });
      const bin = fs.realpathSync(path.join(app, 'node_modules', '.bin', 'functions-framework'));
      assert.equal(path.basename(bin), launcher === 'node' ? 'launcher.js' : 'function-server');
      assert.equal(fs.statSync(bin).mode & 0o777, 0o755, 'npm made the bin executable');

      for (const extra of [{}, { FUNCTION_TARGET: 'hello' }]) {
        const built = buildTimeRequire(app, entry, extra);
        assert.equal(built.status, 0, `build-time require failed: ${built.stdout}${built.stderr}`);
        assert.ok(built.ms < 10000, `build-time require took ${built.ms} ms`);
        assert.match(built.stderr, /not started: GOOGLE_FUNCTION_TARGET is set and K_SERVICE is not/);
      }

      const port = await freePort();
      const child = await launch(app, 'node_modules/.bin/functions-framework', port, 'hello', 'http');
      const reply = await waitForHttp(port, child, '/?name=Cloud');
      assert.deepEqual([reply.status, reply.body], [200, 'Hello, Cloud!\n']);
      assertServedByRust(child, app);
      await drains(child);
    });
  }

  test(`${launcher} launcher: HTTP and CloudEvent functions of one package answer from Rust, with the Node.js launcher's flags`, async () => {
    const { app } = cloudBuild(testFunctionsZip(launcher), { target: 'echo' });
    const httpPort = await freePort();
    const http = await launch(app, 'node_modules/.bin/functions-framework --target=echo --signature-type=http --source=.', httpPort, 'echo', 'http');
    const echoed = await waitForHttp(httpPort, http, '/');
    assert.equal(echoed.status, 200);
    const body = await request(httpPort, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'from rust' });
    assert.deepEqual([body.status, body.body], [200, 'from rust']);
    assertServedByRust(http, app);

    const cePort = await freePort();
    const ce = await launch(app, `node_modules/.bin/functions-framework --port=${cePort}`, 0, 'cloudevent_noop', 'cloudevent');
    assert.equal((await waitForHttp(cePort, ce, '/')).status, 405, 'an event function refuses GET');
    const event = await request(cePort, { method: 'POST', headers: CLOUD_EVENT, body: '{"message":{"data":"aGk="}}' });
    assert.equal(event.status, 204, event.body);
    const bad = await request(cePort, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /not an event/, 'the Rust framework\'s message');
    assertServedByRust(ce, app);
    await drains(http);
    await drains(ce);
  });
}

test('injected Functions Framework 3.5.1 (no dependency in package.json): index.js and the shim still serve Rust', async () => {
  const layerBin = path.join(INJECTED_LAYER, 'node_modules', '.bin', 'functions-framework');
  assert.ok(fs.existsSync(layerBin), 'the injected layer is installed (make node-deps)');
  const version = JSON.parse(fs.readFileSync(path.join(INJECTED_LAYER, 'node_modules', '@google-cloud', 'functions-framework', 'package.json'), 'utf8')).version;
  assert.equal(version, '3.5.1');
  const { app } = cloudBuild(testFunctionsZip('node'), { dependency: false, target: 'echo' });
  assert.ok(!fs.existsSync(path.join(app, 'node_modules', '.bin', 'functions-framework')), 'the package brings no launcher');
  const nodePath = path.join(app, 'node_modules');
  for (const [target, signature] of [['echo', 'http'], ['cloudevent_noop', 'cloudevent']]) {
    const port = await freePort();
    const child = await launch(app, layerBin, port, target, signature, fs.existsSync(nodePath) ? { NODE_PATH: nodePath } : {});
    if (signature === 'http') {
      const reply = await waitForHttp(port, child, '/');
      assert.equal(reply.status, 200);
    } else {
      assert.equal((await waitForHttp(port, child, '/')).status, 405, 'an event function refuses GET');
      const event = await request(port, { method: 'POST', headers: CLOUD_EVENT, body: '{"message":{}}' });
      assert.equal(event.status, 204, event.body);
    }
    assertServedByRust(child, app);
    await drains(child);
  }
});

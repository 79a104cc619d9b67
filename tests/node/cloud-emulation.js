'use strict';
// The cloud's build and launch, emulated from a function zip alone in an empty folder, as the
// Node.js build of Cloud Functions does it (GoogleCloudPlatform/buildpacks: the npm and
// functions-framework buildpacks): unzip; `npm ci` (after `npm install --package-lock-only`
// when there is no lockfile); `node --check` of the entry file; the build-time require of the
// bytecode-cache step; then the web process `/bin/bash -c node_modules/.bin/functions-framework`
// with the instance's environment. Used by cloud.test.js and cli.test.js.

const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { ROOT, onCleanup, start, exeOf } = require('./helpers');
const packaging = require(path.join(ROOT, 'tools', 'package.js'));

const BYTECODE_CACHE = path.join(__dirname, 'fixtures', 'bytecode-cache.js');

function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
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

module.exports = {
  tempDir, buildEnv, run, cloudBuild, buildTimeRequire, instanceEnv, launch, childrenOf, assertServedByRust, drains,
};

'use strict';
// Shared by the end-to-end tests: stage a function package the way `make` lays it out, start
// processes, talk HTTP over loopback, and clean everything up.

const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const SHIM = process.env.FF_SHIM_PATH || path.join(ROOT, 'target', 'debug', 'libshim_node.so');
const BINARY = process.env.FF_FUNCTION_BINARY || path.join(ROOT, 'target', 'debug', 'test-functions');
const packaging = require(path.join(ROOT, 'tools', 'package.js'));
const LAUNCHER = path.join(__dirname, 'node_modules', '@google-cloud', 'functions-framework', 'build', 'src', 'main.js');

const cleanups = [];

/** A package folder laid out as in function.zip (tools/package.js), with test-functions as
 * the binary. */
function stagePackage({ binary = true, executable = true, functions = [], launcher = 'node' } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-package-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return packaging.stage({ binary: binary ? BINARY : null, shim: SHIM, launcher, dir, functions, executable });
}

/** Where the binary is in a staged or unzipped package. */
function binaryIn(dir) {
  return path.join(dir, packaging.FOLDER, 'function-server');
}

/** The environment of a function process: ours, without anything that could change its
 * behaviour, plus `extra`. */
function functionEnv(extra = {}) {
  const env = { ...process.env };
  for (const name of ['PORT', 'FUNCTION_TARGET', 'FUNCTION_SIGNATURE_TYPE', 'K_SERVICE', 'FUNCTIONS_FRAMEWORK_EXEC',
    'FUNCTIONS_FRAMEWORK_DEV_BINARY', 'CONFORMANCE_SLEEP_MS', 'CLOUD_RUN_TIMEOUT_SECONDS', 'NODE_OPTIONS']) {
    delete env[name];
  }
  return { ...env, RUST_LOG: 'info', ...extra };
}

/** Spawns a process whose output is collected; killed at cleanup. */
function start(command, args, options) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  child.output = '';
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  if (child.stdout && !options.manualStdout) child.stdout.on('data', (d) => { child.output += d; });
  if (child.stderr) child.stderr.on('data', (d) => { child.output += d; });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await child.exited;
    }
  });
  return child;
}

/** Runs `fn` at the end of the current test. */
function onCleanup(fn) {
  cleanups.push(fn);
}

async function cleanup() {
  while (cleanups.length) {
    await cleanups.pop()();
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One HTTP request; resolves with {status, headers, body} or rejects with the error. */
function request(port, { method = 'GET', path: urlPath = '/', headers = {}, body = '', agent = false, timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent, timeout }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Retries until the port answers (for processes that bind it themselves). */
async function waitForHttp(port, child, urlPath = '/?ms=0', deadline = 20000) {
  const started = Date.now();
  for (;;) {
    try {
      return await request(port, { path: urlPath });
    } catch (error) {
      if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}): ${child.output}`);
      if (Date.now() - started > deadline) throw new Error(`no answer on ${port}: ${error.message}\n${child.output}`);
      await sleep(20);
    }
  }
}

function exeOf(pid) {
  return fs.readlinkSync(`/proc/${pid}/exe`);
}

/** What each fd of a process points to, and whether it is close-on-exec. */
function fdsOf(pid) {
  const dir = `/proc/${pid}/fd`;
  return fs.readdirSync(dir).map((fd) => {
    let target;
    let cloexec = null;
    try { target = fs.readlinkSync(path.join(dir, fd)); } catch (_) { target = '(gone)'; }
    try {
      const flags = /flags:\s*([0-7]+)/.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      cloexec = flags ? (parseInt(flags[1], 8) & 0o2000000) !== 0 : null;
    } catch (_) { /* closed meanwhile */ }
    return { fd: Number(fd), target, cloexec };
  });
}

module.exports = {
  ROOT, SHIM, BINARY, LAUNCHER, onCleanup, stagePackage, binaryIn, functionEnv, start, cleanup, freePort, sleep, request,
  waitForHttp, exeOf, fdsOf,
};

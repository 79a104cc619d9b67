'use strict';
// The shim end to end: a real `node` requires the real function package, the process
// becomes the Rust binary (same PID) and serves on the sockets Node.js held.

const assert = require('node:assert/strict');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { test, afterEach } = require('node:test');

const {
  ROOT, LAUNCHER, onCleanup, stagePackage, binaryIn, functionEnv, start, cleanup, freePort, sleep, request, waitForHttp, exeOf, fdsOf,
} = require('./helpers');

afterEach(cleanup);

function listeningPort(child) {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      const match = /listening (\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${child.output}${text}`)));
  });
}

test('legacy order: the in-flight request is answered "User function is ready", then Rust serves the same listener with no failed request', async () => {
  const dir = stagePackage();
  const worker = start(process.execPath, [path.join(ROOT, 'tools', 'cloud-worker.js'), dir], {
    env: functionEnv({ FUNCTION_TARGET: 'sleep', PORT: '0' }),
    manualStdout: true,
  });
  const port = await listeningPort(worker);
  assert.equal(exeOf(worker.pid), process.execPath, 'the worker starts as node');
  // fds Node.js inherited from its own parent without close-on-exec legitimately survive
  // the exec; everything Node.js opened itself must not.
  const before = fdsOf(worker.pid);
  const inherited = new Set(before.filter((f) => f.fd > 2 && f.cloexec === false).map((f) => f.target));
  assert.ok(before.some((f) => f.cloexec === true), 'Node.js has close-on-exec fds of its own');

  // A client loop across the switch: keep-alive connections and fresh ones.
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const bodies = [];
  const failures = [];
  let stop = false;
  const loop = async (agent) => {
    while (!stop) {
      try {
        const reply = await request(port, { path: '/?ms=0', agent });
        bodies.push(`${reply.status} ${reply.body}`);
      } catch (error) {
        failures.push(error.message);
      }
    }
  };
  const loops = [1, 2, 3, 4].map(() => loop(keepAlive)).concat([1, 2].map(() => loop(false)));
  const started = Date.now();
  while (bodies.length + failures.length < 3000 && Date.now() - started < 10000) await sleep(20);
  stop = true;
  await Promise.all(loops);
  keepAlive.destroy();

  assert.deepEqual(failures, [], 'no refused, reset or failed request');
  assert.ok(bodies.length >= 1000, `only ${bodies.length} requests completed`);
  assert.equal(bodies.filter((b) => b === '200 User function is ready').length, 1, 'exactly one ready answer');
  const others = bodies.filter((b) => b !== '200 User function is ready');
  assert.deepEqual([...new Set(others)], ['200 slept 0ms'], 'every other request served by the Rust function');

  // Same PID, now the binary.
  assert.equal(exeOf(worker.pid), binaryIn(dir));

  // No fd leaks: besides stdio, only sockets (the adopted listener and connections,
  // tokio's signal pair) and the runtime's anonymous inodes (epoll, eventfd).
  const leaked = fdsOf(worker.pid).filter(
    ({ fd, target }) => fd > 2 && !/^(socket:|anon_inode:)/.test(target) && !inherited.has(target),
  );
  assert.deepEqual(leaked, [], 'fds other than sockets and the runtime\'s own');
});

test("today's order: the official launcher loads the package, the Rust binary binds PORT with the launcher's flags", async () => {
  const dir = stagePackage({ functions: [{ name: 'sleep', signatureType: 'http' }] });
  const envPort = await freePort();
  const flagPort = await freePort();
  const launcher = start(process.execPath, [LAUNCHER, '--target=echo', '--port', String(flagPort), '--signature-type=http'], {
    cwd: dir,
    env: functionEnv({ FUNCTION_TARGET: 'sleep', PORT: String(envPort), K_SERVICE: 'rust-function', FUNCTION_SIGNATURE_TYPE: 'http' }),
  });
  await waitForHttp(flagPort, launcher, '/');
  const echoed = await request(flagPort, { method: 'POST', body: 'ping', headers: { 'content-type': 'text/plain' } });
  assert.equal(echoed.status, 200);
  assert.equal(echoed.body, 'ping', '--target=echo beat FUNCTION_TARGET=sleep');
  assert.equal(exeOf(launcher.pid), binaryIn(dir), 'same PID, now the binary');
  await assert.rejects(request(envPort), /ECONNREFUSED/, 'PORT from the environment is not used when --port is given');
  assert.match(launcher.output, /serving on/);
});

test('logs after the exec reach the launcher\'s pipes, also 10 MB through a slowly read pipe', async () => {
  const dir = stagePackage();
  const port = await freePort();
  const launcher = start(process.execPath, [LAUNCHER, '--target=log'], {
    cwd: dir,
    env: functionEnv({ FUNCTION_TARGET: 'log', PORT: String(port), K_SERVICE: 'rust-function' }),
    manualStdout: true,
  });
  let logLines = 0;
  let partial = '';
  launcher.stdout.on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    logLines += parts.filter((line) => line.startsWith('log line ')).length;
    // Read slowly: the writer has to wait for room in the pipe.
    launcher.stdout.pause();
    setTimeout(() => launcher.stdout.resume(), 5);
  });
  await waitForHttp(port, launcher, '/?lines=1');
  const lines = 131072; // about 10 MiB of log lines
  const reply = await request(port, { path: `/?lines=${lines}`, timeout: 120000 });
  assert.equal(reply.status, 200, reply.body);
  const started = Date.now();
  while (logLines < lines + 1 && Date.now() - started < 60000) await sleep(50);
  assert.equal(logLines, lines + 1, 'every line written after the exec arrived on stdout');

  // stderr too: a panic report.
  const panicPort = await freePort();
  const panicking = start(process.execPath, [LAUNCHER, '--target=panic'], {
    cwd: dir,
    env: functionEnv({ FUNCTION_TARGET: 'panic', PORT: String(panicPort), K_SERVICE: 'rust-function' }),
  });
  const crashed = await waitForHttp(panicPort, panicking, '/');
  assert.equal(crashed.status, 500);
  const until = Date.now() + 5000;
  while (!/deliberate panic/.test(panicking.output) && Date.now() < until) await sleep(20);
  assert.match(panicking.output, /deliberate panic/);
});

test('SIGTERM to the PID drains the in-flight request and exits 0', async () => {
  const dir = stagePackage();
  const port = await freePort();
  const launcher = start(process.execPath, [LAUNCHER, '--target=sleep'], {
    cwd: dir,
    env: functionEnv({ FUNCTION_TARGET: 'sleep', PORT: String(port), K_SERVICE: 'rust-function' }),
  });
  await waitForHttp(port, launcher);
  assert.equal(exeOf(launcher.pid), binaryIn(dir));
  const slow = request(port, { path: '/?ms=1000' });
  await sleep(200);
  process.kill(launcher.pid, 'SIGTERM');
  const reply = await slow;
  assert.equal(reply.status, 200);
  assert.equal(reply.body, 'slept 1000ms');
  assert.deepEqual(await launcher.exited, { code: 0, signal: null });
});

test('a missing binary is a JS error naming it, and Node.js lives on', async () => {
  const dir = stagePackage({ binary: false });
  const child = start(process.execPath, [path.join(__dirname, 'fixtures', 'require-and-report.js'), dir], {
    env: functionEnv({ FUNCTION_TARGET: 'sleep' }),
  });
  assert.deepEqual(await child.exited, { code: 0, signal: null });
  const binary = binaryIn(dir);
  assert.ok(child.output.includes(`threw cannot start the Rust function binary ${binary}`), child.output);
  assert.match(child.output, /errno 2\)/);
  assert.match(child.output, /alive/);
});

test('a binary without its executable bit still runs (from memory)', async () => {
  const dir = stagePackage({ executable: false });
  const port = await freePort();
  const launcher = start(process.execPath, [LAUNCHER, '--target=sleep'], {
    cwd: dir,
    env: functionEnv({ FUNCTION_TARGET: 'sleep', PORT: String(port), K_SERVICE: 'rust-function' }),
  });
  const reply = await waitForHttp(port, launcher);
  assert.equal(reply.body, 'slept 0ms');
  assert.match(exeOf(launcher.pid), /memfd:function-server/);
});

test('with the gate off nothing is exec\'d, the names are exported and the reason is printed', async () => {
  const dir = stagePackage({ functions: [{ name: 'sleep', signatureType: 'http' }, { name: 'echo', signatureType: 'http' }] });
  const child = start(process.execPath, [path.join(__dirname, 'fixtures', 'require-and-report.js'), dir], {
    env: functionEnv({}),
  });
  assert.deepEqual(await child.exited, { code: 0, signal: null });
  assert.match(child.output, /returned \["sleep","echo"\]/);
  assert.match(child.output, /was not started: neither FUNCTION_TARGET nor K_SERVICE is set/);
  assert.match(child.output, /alive/);
});

test("today's order under load: only refused connections before the port opens, nothing failed after", async () => {
  const dir = stagePackage();
  const port = await freePort();
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const refusedBefore = [];
  const failedAfter = [];
  let served = 0;
  let stop = false;
  const loop = async (agent) => {
    while (!stop) {
      try {
        const reply = await request(port, { path: '/?ms=0', agent });
        if (reply.status !== 200 || reply.body !== 'slept 0ms') failedAfter.push(`${reply.status} ${reply.body}`);
        served += 1;
      } catch (error) {
        if (served === 0 && error.code === 'ECONNREFUSED') {
          refusedBefore.push(error.code);
          await sleep(1);
        } else {
          failedAfter.push(`${error.code || ''} ${error.message}`);
        }
      }
    }
  };
  // The clients start before the launcher, as a load balancer would.
  const loops = [1, 2, 3, 4].map(() => loop(keepAlive)).concat([1, 2].map(() => loop(false)));
  const launcher = start(process.execPath, [LAUNCHER, '--target=sleep'], {
    cwd: dir,
    env: functionEnv({ FUNCTION_TARGET: 'sleep', PORT: String(port), K_SERVICE: 'rust-function' }),
  });
  const started = Date.now();
  while (served < 3000 && Date.now() - started < 20000) await sleep(20);
  stop = true;
  await Promise.all(loops);
  keepAlive.destroy();
  assert.ok(served >= 1000, `only ${served} requests served: ${launcher.output}`);
  assert.deepEqual(failedAfter, [], 'no reset, truncated or failed response once the port was open');
  assert.ok(refusedBefore.length > 0, 'the clients did start before the port opened');
  assert.equal(exeOf(launcher.pid), binaryIn(dir));
});

test('only the binary next to the module runs: PATH, the current folder and look-alike variables cannot redirect it', async () => {
  const dir = stagePackage();
  const decoy = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-decoy-'));
  onCleanup(() => fs.rmSync(decoy, { recursive: true, force: true }));
  const fake = path.join(decoy, 'function-server');
  fs.writeFileSync(fake, '#!/bin/sh\necho decoy ran\nexit 7\n');
  fs.chmodSync(fake, 0o755);
  const port = await freePort();
  const child = start(process.execPath, [LAUNCHER, '--target=sleep', `--source=${dir}`], {
    cwd: decoy,
    env: functionEnv({
      FUNCTION_TARGET: 'sleep', PORT: String(port), K_SERVICE: 'rust-function',
      PATH: `${decoy}:${process.env.PATH}`, FUNCTIONS_FRAMEWORK_BINARY: fake, FUNCTION_BINARY: fake,
    }),
  });
  const reply = await waitForHttp(port, child);
  assert.equal(reply.body, 'slept 0ms');
  assert.equal(exeOf(child.pid), binaryIn(dir));
  assert.doesNotMatch(child.output, /decoy ran/);

  // The documented development variable is the one way to run another binary.
  const other = path.join(decoy, 'other-server');
  fs.copyFileSync(binaryIn(dir), other);
  const devPort = await freePort();
  const dev = start(process.execPath, [LAUNCHER, '--target=sleep'], {
    cwd: dir,
    env: functionEnv({ FUNCTION_TARGET: 'sleep', PORT: String(devPort), K_SERVICE: 'rust-function', FUNCTIONS_FRAMEWORK_DEV_BINARY: other }),
  });
  await waitForHttp(devPort, dev);
  assert.equal(exeOf(dev.pid), other);
});

test('a WebSocket served through .service works after the hand-over, on the launched PID', async () => {
  const WebSocket = require('ws');
  const dir = stagePackage({ functions: [{ name: 'websocket', signatureType: 'http' }] });
  const port = await freePort();
  const launcher = start(process.execPath, [LAUNCHER, '--target=websocket'], {
    cwd: dir,
    env: functionEnv({ FUNCTION_TARGET: 'websocket', PORT: String(port), K_SERVICE: 'rust-function' }),
  });
  await waitForHttp(port, launcher, '/');
  assert.equal(exeOf(launcher.pid), binaryIn(dir), 'the Rust binary serves');
  const socket = new WebSocket(`ws://127.0.0.1:${port}/chat`);
  onCleanup(() => socket.terminate());
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
  const echoes = [];
  const received = new Promise((resolve) => {
    socket.on('message', (data, binary) => {
      echoes.push(binary ? [...data] : data.toString());
      if (echoes.length === 2) resolve();
    });
  });
  socket.send('through the shim');
  socket.send(Buffer.from([7, 8, 9]));
  await received;
  assert.deepEqual(echoes, ['through the shim', [7, 8, 9]]);
});

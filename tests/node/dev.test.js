'use strict';
// The local workflow: test events sent with tools/invoke.js, and `make dev`'s watcher
// rebuilding and restarting a function when its source changes.

const assert = require('node:assert/strict');
const { execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { test, afterEach } = require('node:test');

const { ROOT, BINARY, onCleanup, functionEnv, start, cleanup, freePort, sleep, request, waitForHttp } = require('./helpers');

afterEach(cleanup);

const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'events');

function invoke(fixture, port) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'tools', 'invoke.js'), fixture, `http://127.0.0.1:${port}/`], (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, output: stdout + stderr });
    });
  });
}

for (const [target, signature] of [['cloudevent', 'cloudevent'], ['legacyevent', 'event']]) {
  test(`every event fixture is accepted by a ${signature} function through tools/invoke.js`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-fixtures-'));
    onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const server = start(BINARY, [], {
      cwd: dir,
      env: functionEnv({ FUNCTION_TARGET: target, FUNCTION_SIGNATURE_TYPE: signature, PORT: String(port) }),
    });
    await waitForHttp(port, server, '/robots.txt');
    const all = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
    assert.equal(all.length, 17);
    // A legacy event function takes the families the legacy <-> CloudEvent table knows, and
    // the push request; a CloudEvent function takes every family, protobuf data included.
    const legacy = ['pubsub-binary', 'pubsub-structured', 'pubsub-push', 'storage-binary', 'storage-structured', 'firestore-binary', 'firestore-structured'];
    const fixtures = signature === 'cloudevent' ? all : legacy;
    for (const fixture of fixtures) {
      fs.rmSync(path.join(dir, 'function_output.json'), { force: true });
      const result = await invoke(fixture, port);
      assert.equal(result.code, 0, `${fixture}: ${result.output}`);
      assert.match(result.output, /^204/, fixture);
      const recorded = JSON.parse(fs.readFileSync(path.join(dir, 'function_output.json'), 'utf8'));
      const sent = JSON.parse(fs.readFileSync(path.join(FIXTURES, `${fixture}.json`), 'utf8'));
      const id = sent.headers['ce-id'] || sent.body.id || sent.body.message.messageId;
      const got = signature === 'cloudevent' ? recorded.id : recorded.context.eventId;
      assert.equal(got, id, fixture);
    }
    const missing = await invoke('no-such-fixture', port);
    assert.equal(missing.code, 2);
    assert.match(missing.output, /fixtures: .*pubsub-binary/);
  });
}

test('make dev: the watcher serves the function and restarts it with the new code after an edit', { timeout: 600000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-watch-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ffRust = path.join(ROOT, 'target', 'debug', 'ff-rust');
  await new Promise((resolve, reject) => execFile(ffRust, ['new', 'watched', '--http', '--framework-path', path.join(ROOT, 'go-replacement-rust'), '--dir', dir], (e) => (e ? reject(e) : resolve())));
  const crate = path.join(dir, 'watched');
  const port = await freePort();
  const watcher = start(process.execPath, [path.join(ROOT, 'tools', 'watch.js'), crate, 'function'], {
    env: functionEnv({ PORT: String(port), CARGO_TARGET_DIR: path.join(ROOT, 'target', 'newcomer') }),
  });
  const first = await waitForHttp(port, watcher, '/', 480000);
  assert.equal(first.body, 'Hello, World!\n');

  const main = path.join(crate, 'src', 'main.rs');
  fs.writeFileSync(main, fs.readFileSync(main, 'utf8').replace('format!("Hello, {name}!\\n")', 'format!("Howdy, {name}!\\n")'));
  const started = Date.now();
  let body = first.body;
  while (body !== 'Howdy, World!\n' && Date.now() - started < 240000) {
    await sleep(200);
    try { body = (await request(port, { path: '/' })).body; } catch (_) { /* restarting */ }
  }
  assert.equal(body, 'Howdy, World!\n', watcher.output);
  assert.match(watcher.output, /\[watch\] changed: src\/main.rs/);
  watcher.kill('SIGINT');
  assert.deepEqual(await watcher.exited, { code: 0, signal: null });
  await assert.rejects(request(port, { path: '/' }), /ECONNREFUSED/);
});

'use strict';
// The local workflow through make: `make invoke` sending test events, and `make dev`
// rebuilding and restarting a function when its source changes (both are ff-rust's, built
// from this checkout; tests/node/cli.test.js covers ff-rust itself).

const assert = require('node:assert/strict');
const { execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { test, afterEach } = require('node:test');

const { ROOT, BINARY, onCleanup, functionEnv, start, cleanup, freePort, sleep, request, waitForHttp } = require('./helpers');

afterEach(cleanup);

const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'events');

function invoke(fixture, port, form) {
  const args = ['-s', '--no-print-directory', '-C', ROOT, 'invoke', `FIXTURE=${fixture}`, `PORT=${port}`];
  if (form) args.push(`FORM=${form}`);
  return new Promise((resolve) => {
    execFile('make', args, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, output: stdout + stderr });
    });
  });
}

for (const [target, signature] of [['cloudevent', 'cloudevent'], ['legacyevent', 'event']]) {
  test(`every event fixture is accepted by a ${signature} function through make invoke`, async () => {
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
    // FORM converts: the binary-mode Pub/Sub fixture, sent in structured mode.
    if (signature === 'cloudevent') {
      fs.rmSync(path.join(dir, 'function_output.json'), { force: true });
      const structured = await invoke('pubsub-binary', port, 'structured');
      assert.equal(structured.code, 0, structured.output);
      assert.match(structured.output, /^204/);
      const recorded = JSON.parse(fs.readFileSync(path.join(dir, 'function_output.json'), 'utf8'));
      const sent = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'pubsub-binary.json'), 'utf8'));
      assert.equal(recorded.id, sent.headers['ce-id']);
      const bogus = await invoke('pubsub-binary', port, 'bogus');
      assert.notEqual(bogus.code, 0);
      assert.match(bogus.output, /invalid value 'bogus' for '--as <FORM>'/);
    }
    const missing = await invoke('no-such-fixture', port);
    assert.notEqual(missing.code, 0);
    assert.match(missing.output, /no fixture "no-such-fixture".*the fixtures: .*pubsub-binary/);
  });
}

test('make dev: ff-rust dev serves the function and restarts it with the new code after an edit', { timeout: 600000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-watch-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ffRust = path.join(ROOT, 'target', 'debug', 'ff-rust');
  await new Promise((resolve, reject) => execFile(ffRust, ['new', 'watched', '--http', '--framework-path', path.join(ROOT, 'go-replacement-rust'), '--dir', dir], (e) => (e ? reject(e) : resolve())));
  const crate = path.join(dir, 'watched');
  const port = await freePort();
  // In a process group of its own, so that the test can stop it as Ctrl-C does: make, ff-rust
  // and the server all get SIGINT.
  const watcher = start('make', ['--no-print-directory', '-C', ROOT, 'dev', `FUNCTION_DIR=${crate}`, `PORT=${port}`], {
    detached: true,
    env: functionEnv({ CARGO_TARGET_DIR: path.join(ROOT, 'target', 'newcomer') }),
  });
  onCleanup(() => { try { process.kill(-watcher.pid, 'SIGKILL'); } catch (_) { /* gone */ } });
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
  assert.match(watcher.output, /\[dev\] changed: src\/main.rs/);
  process.kill(-watcher.pid, 'SIGINT');
  // make waits for ff-rust, which stops the server (it drains) and says so, then make ends by
  // the interrupt, as after Ctrl-C.
  assert.deepEqual(await watcher.exited, { code: null, signal: 'SIGINT' });
  for (let i = 0; i < 20 && !/\[dev\] stopped/.test(watcher.output); i++) await sleep(100);
  assert.match(watcher.output, /all connections drained[\s\S]*\[dev\] stopped/);
  await assert.rejects(request(port, { path: '/' }), /ECONNREFUSED/);
});

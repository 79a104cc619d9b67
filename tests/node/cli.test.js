'use strict';
// The whole workflow with `ff-rust` alone, from an empty folder: `new`, `cargo test`,
// `package` (and `cargo ff-rust package`), the cloud's build and launch of the zip; `dev`
// serving a function that `invoke` sends every fixture family to, in every form, and
// restarting after an edit; `dev --node` through Node.js and the shim; `deploy --dry-run`
// and `deploy` with a fake `gcloud` that records its arguments, for each trigger kind.
// The crates are not published: the functions depend on this checkout (--framework-path).

const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { test, afterEach } = require('node:test');

const { ROOT, start, cleanup, freePort, sleep, request, waitForHttp, exeOf } = require('./helpers');
const { tempDir, cloudBuild, launch, assertServedByRust, drains } = require('./cloud-emulation');

afterEach(cleanup);

const FRAMEWORK = path.join(ROOT, 'go-replacement-rust');
// Shared with the other tests that build scaffolded crates, so that dependencies build once.
const TARGET_DIR = path.join(ROOT, 'target', 'newcomer');

/** PATH with a folder holding only the CLI's two binaries in front: the tests call them by
 * name, as a user who installed the CLI would. */
function cliEnv(extra = {}) {
  const bin = tempDir('ff-cli-bin-');
  for (const name of ['ff-rust', 'cargo-ff-rust']) {
    fs.copyFileSync(path.join(ROOT, 'target', 'debug', name), path.join(bin, name));
    fs.chmodSync(path.join(bin, name), 0o755);
  }
  const env = { ...process.env, CARGO_TARGET_DIR: TARGET_DIR, ...extra };
  for (const name of Object.keys(env)) {
    if (/^(PORT|FUNCTION_|K_SERVICE|K_REVISION|K_CONFIGURATION)/.test(name)) delete env[name];
  }
  env.PATH = `${bin}:${extra.PATH || process.env.PATH}`;
  return env;
}

function run(command, args, options) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 900000, ...options });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed (${result.status} ${result.signal}):\n${result.stdout}${result.stderr}`);
  return result.stdout + result.stderr;
}

/** Launches the built app as the runtime does, checks the HTTP template's greeting (and, with
 * `onRustPid`, that the launched PID is the Rust binary), then drains it. */
async function greets(app, target, name, { onRustPid }) {
  const port = await freePort();
  const child = await launch(app, 'node_modules/.bin/functions-framework', port, target, 'http');
  const reply = await waitForHttp(port, child, `/?name=${name}`);
  assert.deepEqual([reply.status, reply.body], [200, `Hello, ${name}!\n`]);
  if (onRustPid) assertServedByRust(child, app);
  await drains(child);
}

test('from an empty folder: new, cargo test, package, then the cloud build and launch answer from Rust', { timeout: 1200000 }, async () => {
  const work = tempDir('ff-cli-');
  const env = cliEnv();
  const said = run('ff-rust', ['new', 'wf', '--http', '--framework-path', FRAMEWORK], { cwd: work, env });
  assert.match(said, /ff-rust dev/);
  const crate = path.join(work, 'wf');
  const manifest = fs.readFileSync(path.join(crate, 'Cargo.toml'), 'utf8');
  assert.match(manifest, /functions-framework = \{ path = /);
  run('cargo', ['test', '--quiet'], { cwd: crate, env });

  const packaged = run('ff-rust', ['package'], { cwd: crate, env });
  assert.match(packaged, /function\.zip \(\d+ KiB, node launcher\)/);
  const zip = path.join(crate, 'function.zip');
  const { app } = cloudBuild(zip, { target: 'wf' });
  await greets(app, 'wf', 'Cloud', { onRustPid: true });

  // As a cargo subcommand, with the binary itself as the launcher.
  const direct = path.join(work, 'direct.zip');
  run('cargo', ['ff-rust', 'package', '--launcher', 'direct', '--out', direct], { cwd: crate, env });
  const built = cloudBuild(direct, { target: 'wf' });
  const bin = fs.realpathSync(path.join(built.app, 'node_modules', '.bin', 'functions-framework'));
  assert.equal(path.basename(bin), 'function-server');
  await greets(built.app, 'wf', 'Direct', { onRustPid: false });
});

/** Waits until something accepts connections on the port. */
async function listening(port, child, deadline) {
  const started = Date.now();
  while (Date.now() - started < deadline) {
    try {
      await request(port, { method: 'OPTIONS', path: '/' });
      return;
    } catch (_) {
      if (child.exitCode !== null) throw new Error(`exited: ${child.output}`);
      await sleep(200);
    }
  }
  throw new Error(`nothing listened on ${port}: ${child.output}`);
}

test('dev serves a CloudEvent function, invoke sends every fixture in every form, dev restarts after an edit', { timeout: 1200000 }, async () => {
  const work = tempDir('ff-cli-dev-');
  const env = cliEnv();
  run('ff-rust', ['new', 'ev', '--cloudevent', '--framework-path', FRAMEWORK], { cwd: work, env });
  const crate = path.join(work, 'ev');
  const port = await freePort();
  const dev = start('ff-rust', ['dev', '--port', String(port)], { cwd: crate, env });
  await listening(port, dev, 900000);

  const listed = run('ff-rust', ['invoke', '--list'], { cwd: crate, env });
  const fixtures = listed.trim().split('\n').map((line) => {
    const name = line.split(':')[0];
    const forms = (line.match(/\[--as ([a-z|]+)\]/) || [null, ''])[1].split('|').filter(Boolean);
    return { name, forms };
  });
  assert.ok(fixtures.length >= 17, listed);
  const url = `http://127.0.0.1:${port}/`;
  let sent = 0;
  for (const { name, forms } of fixtures) {
    for (const form of [null, ...forms]) {
      const args = ['invoke', name, '--url', url, ...(form ? ['--as', form] : [])];
      const result = spawnSync('ff-rust', args, { cwd: crate, env, encoding: 'utf8' });
      if (name === 'firestore-protobuf' && form !== 'legacy') {
        // The template takes JSON data (CloudEvent<serde_json::Value>): protobuf data is
        // refused with what to take instead (new --event-type scaffolds for it).
        assert.equal(result.status, 1, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
        assert.match(result.stderr, /answered 400\n.*application\/protobuf.*functions_framework::events::google/s);
      } else {
        assert.equal(result.status, 0, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
        assert.match(result.stdout, /^204\n/, `${args.join(' ')}: ${result.stdout}`);
      }
      sent += 1;
    }
  }
  // Every family in binary and structured form, legacy where the table has one, and the
  // push request: well over the fixture count.
  assert.ok(sent >= 50, `only ${sent} invocations`);
  assert.ok(fixtures.some((f) => f.name === 'pubsub-push'), listed);
  assert.ok(fixtures.filter((f) => f.forms.includes('legacy')).length >= 5, listed);
  // The invocations ran synchronously: let the server's log lines in.
  for (let i = 0; i < 50 && !/"message":"received /.test(dev.output); i += 1) await sleep(100);
  assert.match(dev.output, /"message":"received /);

  const refused = spawnSync('ff-rust', ['invoke', 'no-such-fixture', '--url', url], { cwd: crate, env, encoding: 'utf8' });
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /no fixture "no-such-fixture".*pubsub-binary/);

  const main = path.join(crate, 'src', 'main.rs');
  fs.writeFileSync(main, fs.readFileSync(main, 'utf8').replace('"received {}"', '"edited {}"'));
  const started = Date.now();
  while (!/edited/.test(dev.output) && Date.now() - started < 600000) {
    spawnSync('ff-rust', ['invoke', 'pubsub-binary', '--url', url], { cwd: crate, env });
    await sleep(500);
  }
  assert.match(dev.output, /\[dev\] changed: src\/main\.rs/);
  assert.match(dev.output, /edited/, dev.output);

  dev.kill('SIGTERM');
  assert.deepEqual(await dev.exited, { code: 0, signal: null });
  await assert.rejects(request(port, { path: '/' }), /ECONNREFUSED/);
});

test('dev --node serves through Node.js and the shim: the PID node started is the Rust binary', { timeout: 1200000 }, async () => {
  const work = tempDir('ff-cli-node-');
  const env = cliEnv();
  run('ff-rust', ['new', 'viaNode', '--http', '--framework-path', FRAMEWORK], { cwd: work, env });
  const crate = path.join(work, 'viaNode');
  const port = await freePort();
  const dev = start('ff-rust', ['dev', '--node', '--port', String(port)], { cwd: crate, env });
  const reply = await waitForHttp(port, dev, '/?name=Node', 900000);
  assert.deepEqual([reply.status, reply.body], [200, 'Hello, Node!\n']);
  const children = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((e) => {
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === dev.pid;
    } catch (_) {
      return false;
    }
  });
  assert.equal(children.length, 1, 'dev started one server');
  assert.equal(path.basename(exeOf(Number(children[0]))), 'function-server', 'node became the Rust binary');
  dev.kill('SIGTERM');
  assert.deepEqual(await dev.exited, { code: 0, signal: null });
});

test('deploy --dry-run prints the gcloud command; deploy runs gcloud with each trigger kind', { timeout: 1200000 }, () => {
  const work = tempDir('ff-cli-deploy-');
  const fake = tempDir('ff-fake-gcloud-');
  const record = path.join(fake, 'calls.jsonl');
  fs.writeFileSync(path.join(fake, 'gcloud'), `#!/usr/bin/env node
require('fs').appendFileSync(${JSON.stringify(record)}, JSON.stringify({ args: process.argv.slice(2), cwd: process.cwd() }) + '\\n');
`, { mode: 0o755 });
  const env = cliEnv({ PATH: `${fake}:${process.env.PATH}` });
  run('ff-rust', ['new', 'dep', '--cloudevent', '--framework-path', FRAMEWORK], { cwd: work, env });
  const crate = path.join(work, 'dep');

  const dry = run('ff-rust', ['deploy', '--region', 'europe-west1', '--trigger-topic', 'orders', '--set-env-vars', 'A=1', '--dry-run'], { cwd: crate, env });
  const line = dry.split('\n').find((l) => l.startsWith('gcloud ')) || dry;
  assert.match(line, /^gcloud functions deploy dep --gen2 --runtime=nodejs22 --entry-point=dep --source=\S+ --region=europe-west1 --trigger-topic=orders --set-env-vars=A=1$/);
  assert.ok(!fs.existsSync(record), 'the dry run ran no gcloud');
  const source = line.match(/--source=(\S+)/)[1];
  const staged = JSON.parse(fs.readFileSync(path.join(source, 'package.json'), 'utf8'));
  assert.deepEqual(staged.rustFunctions, [{ name: 'dep', signatureType: 'cloudevent' }]);

  const kinds = [
    [['--trigger-http', '--allow-unauthenticated'], ['--trigger-http', '--allow-unauthenticated']],
    [['--trigger-topic', 'orders'], ['--trigger-topic=orders']],
    [['--trigger-bucket', 'uploads'], ['--trigger-bucket=uploads']],
    [['--trigger-event-filters', 'type=google.cloud.firestore.document.v1.written', '--trigger-event-filters', 'database=(default)',
      '--trigger-event-filters-path-pattern', 'document=users/{id}'],
     ['--trigger-event-filters=type=google.cloud.firestore.document.v1.written', '--trigger-event-filters=database=(default)',
      '--trigger-event-filters-path-pattern=document=users/{id}']],
  ];
  for (const [given, expected] of kinds) {
    fs.rmSync(record, { force: true });
    const said = run('ff-rust', ['deploy', 'my-dep', '--entry-point', 'dep', '--region', 'us-central1', '--project', 'p1',
      '--set-env-vars', 'A=1', '--set-env-vars', 'B=x,y', ...given], { cwd: crate, env });
    assert.match(said, /Deployed my-dep/);
    const calls = fs.readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(calls.length, 1);
    const { args } = calls[0];
    assert.deepEqual(args.slice(0, 5), ['functions', 'deploy', 'my-dep', '--gen2', '--runtime=nodejs22']);
    assert.ok(args.includes('--entry-point=dep'), args.join(' '));
    assert.ok(args.includes('--region=us-central1') && args.includes('--project=p1'), args.join(' '));
    assert.ok(args.includes('--set-env-vars=^;^A=1;B=x,y'), args.join(' '));
    for (const flag of expected) assert.ok(args.includes(flag), `${flag} missing: ${args.join(' ')}`);
    const sourceDir = args.find((a) => a.startsWith('--source=')).slice('--source='.length);
    assert.ok(fs.existsSync(path.join(sourceDir, 'functions-framework-rust', 'function-server')), sourceDir);
  }

  // No trigger, or a registered name that is not there: refused before anything runs.
  const none = spawnSync('ff-rust', ['deploy', '--region', 'r'], { cwd: crate, env, encoding: 'utf8' });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--trigger-http/);
  const wrong = spawnSync('ff-rust', ['deploy', '--entry-point', 'nope', '--trigger-http'], { cwd: crate, env, encoding: 'utf8' });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /registers no function "nope" \(it registers dep\)/);
});

test('an ff-rust built with FF_RUST_SHIM carries the shim: package uses it, and the package serves from Rust', { timeout: 1200000 }, async () => {
  const shim = path.join(ROOT, 'target', 'debug', 'libshim_node.so');
  assert.ok(fs.existsSync(shim), `${shim}: cargo build -p shim-node first`);
  const cliTarget = path.join(ROOT, 'target', 'cli-with-shim');
  run('cargo', ['build', '--quiet', '-p', 'functions-framework-cli', '--target-dir', cliTarget], {
    cwd: ROOT, env: { ...process.env, FF_RUST_SHIM: shim },
  });
  const bin = tempDir('ff-cli-shim-bin-');
  fs.copyFileSync(path.join(cliTarget, 'debug', 'ff-rust'), path.join(bin, 'ff-rust'));
  fs.chmodSync(path.join(bin, 'ff-rust'), 0o755);
  const env = { ...cliEnv(), PATH: `${bin}:${process.env.PATH}` };

  const work = tempDir('ff-cli-shim-');
  run('ff-rust', ['new', 'carried', '--http', '--framework-path', FRAMEWORK], { cwd: work, env });
  const crate = path.join(work, 'carried');
  run('ff-rust', ['package'], { cwd: crate, env });
  const { app } = cloudBuild(path.join(crate, 'function.zip'), { target: 'carried' });
  const staged = fs.readFileSync(path.join(app, 'functions-framework-rust', 'shim.node'));
  assert.ok(staged.equals(fs.readFileSync(shim)), 'the package holds the shim the tool carries');
  await greets(app, 'carried', 'Carried', { onRustPid: true });
});

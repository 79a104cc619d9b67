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
const {
  tempDir, buildEnv, run, cloudBuild, buildTimeRequire, instanceEnv, launch, childrenOf, assertServedByRust, drains,
} = require('./cloud-emulation');

afterEach(cleanup);

/** The layer the build installs Functions Framework 3.5.1 into (`make node-deps`). */
const INJECTED_LAYER = path.join(__dirname, 'injected-ff');

/** The zips `make check` builds from the release binary of function/ (hello). */
const RELEASE_ZIPS = { node: path.join(ROOT, 'function.zip'), direct: path.join(ROOT, 'build', 'function-direct.zip') };

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

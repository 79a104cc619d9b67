'use strict';
// Lays out and zips a function package for the Node.js runtime of Cloud Functions.
//
//   index.js                     the entry point any Node.js launcher requires
//   package.json                 main: index.js; depends on the folder below as
//                                @google-cloud/functions-framework; rustFunctions
//   package-lock.json            so that the build runs `npm ci`
//   functions-framework-rust/    the folder the dependency points at:
//     package.json               bin functions-framework: launcher.js or function-server
//     launcher.js                (LAUNCHER=node) requires ../index.js
//     shim.node                  the native module that execs the binary
//     function-server            the Rust binary
//
// The runtime starts `node_modules/.bin/functions-framework`, which npm links to the folder's
// bin: with `node` the launcher requires index.js and the shim execs the binary (Node.js
// without the Express-based Functions Framework); with `direct` the binary itself is the
// launcher and Node.js never starts. A platform that injects its own Functions Framework
// still requires index.js, so both layouts serve Rust either way.
//
// Usage: node tools/package.js --binary FILE --shim FILE [--launcher node|direct]
//                              --stage DIR [--out function.zip] [--list-from FILE]
// (--list-from: the binary whose `--list-functions` names the functions, when --binary is
// not a Functions Framework binary.)

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
/** The folder that the package's `@google-cloud/functions-framework` dependency points at. */
const FOLDER = 'functions-framework-rust';
const LAUNCHERS = ['node', 'direct'];
/** The dependency key the Cloud Functions build looks for before it injects its own. */
const DEPENDENCY = '@google-cloud/functions-framework';

const LAUNCHER_JS = `#!/usr/bin/env node
'use strict';
// The package's Functions Framework launcher: the runtime starts it as
// node_modules/.bin/functions-framework. Being started as the launcher means this process is
// the one that serves, so the exec is not gated on the environment; requiring index.js then
// replaces this process with the Rust binary (same PID), which reads the launcher's flags
// (--target, --port, --signature-type; --source is accepted and ignored).
process.env.FUNCTIONS_FRAMEWORK_EXEC = '1';
require('../index.js');
`;

/** The functions the binary registers, as `--list-functions` prints them. */
function listFunctions(binary) {
  const listing = execFileSync(binary, ['--list-functions'], {
    encoding: 'utf8',
    env: { ...process.env, RUST_LOG: 'off' },
  });
  return JSON.parse(listing.trim().split('\n').pop());
}

/**
 * Lays the package out in `stage` (emptied first). `binary` may be null (tests of a missing
 * binary); `functions` defaults to what the binary lists.
 */
function stage({ binary, shim, launcher = 'node', dir, functions, executable = true }) {
  if (!LAUNCHERS.includes(launcher)) {
    throw new Error(`unknown launcher ${JSON.stringify(launcher)}: use LAUNCHER=node or LAUNCHER=direct`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const folder = path.join(dir, FOLDER);
  fs.mkdirSync(folder, { recursive: true });

  fs.copyFileSync(path.join(ROOT, 'index.js'), path.join(dir, 'index.js'));
  fs.copyFileSync(shim, path.join(folder, 'shim.node'));
  fs.chmodSync(path.join(folder, 'shim.node'), 0o755);
  if (binary) {
    fs.copyFileSync(binary, path.join(folder, 'function-server'));
    fs.chmodSync(path.join(folder, 'function-server'), executable ? 0o755 : 0o644);
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const version = manifest.version;
  let bin = 'function-server';
  if (launcher === 'node') {
    fs.writeFileSync(path.join(folder, 'launcher.js'), LAUNCHER_JS, { mode: 0o755 });
    bin = 'launcher.js';
  }
  const folderManifest = {
    name: DEPENDENCY,
    version,
    description: `The Functions Framework for Rust: starts the Rust function (${launcher} launcher)`,
    license: manifest.license,
    private: true,
    bin: { 'functions-framework': bin },
  };
  fs.writeFileSync(path.join(folder, 'package.json'), `${JSON.stringify(folderManifest, null, 2)}\n`);

  manifest.dependencies = { [DEPENDENCY]: `file:./${FOLDER}` };
  manifest.rustFunctions = functions || (binary ? listFunctions(binary) : []);
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  // The lockfile makes the build run `npm ci` (no resolution, nothing from the network).
  execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return dir;
}

/** The entries of the zip, in a fixed order. */
function entries(launcher) {
  const inFolder = ['package.json', 'shim.node', 'function-server'];
  if (launcher === 'node') inFolder.splice(1, 0, 'launcher.js');
  return ['index.js', 'package.json', 'package-lock.json', `${FOLDER}/`, ...inFolder.map((f) => `${FOLDER}/${f}`)];
}

function zip(dir, out, launcher) {
  const tmp = `${out}.tmp.zip`;
  fs.rmSync(tmp, { force: true });
  execFileSync('zip', ['-q', '-X', path.resolve(tmp), ...entries(launcher)], { cwd: dir, stdio: 'inherit' });
  fs.renameSync(tmp, out);
}

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const value = inline !== undefined ? inline : argv[(i += 1)];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    options[flag.replace(/^--/, '')] = value;
  }
  return options;
}

if (require.main === module) {
  try {
    const options = parseArgs(process.argv.slice(2));
    for (const required of ['binary', 'shim', 'stage']) {
      if (!options[required]) throw new Error(`--${required} is required`);
    }
    const launcher = options.launcher || 'node';
    const functions = options['list-from'] ? listFunctions(options['list-from']) : undefined;
    stage({ binary: options.binary, shim: options.shim, launcher, dir: options.stage, functions });
    if (options.out) zip(options.stage, options.out, launcher);
  } catch (error) {
    console.error(`package: ${error.message}`);
    console.error('usage: node tools/package.js --binary FILE --shim FILE [--launcher node|direct] --stage DIR [--out ZIP]');
    process.exit(2);
  }
}

module.exports = { FOLDER, LAUNCHERS, stage, zip, entries, listFunctions };

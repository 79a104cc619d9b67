'use strict';
// The Node.js entry point of a Rust function. Requiring this file replaces the Node.js
// process with the Rust binary shipped next to it (same PID, see shim-node), so that every
// request is served by Rust. When the process is not meant to serve (no FUNCTION_TARGET nor
// K_SERVICE: a build step loading the entry point, say), nothing is started and the
// registered function names are exported as placeholders that explain why.

const path = require('path');

/** Connections whose request is waiting for this module to load: each gets the
 * "User function is ready" answer before the Rust binary takes them over. */
function waitingConnections() {
  const handles =
    typeof process._getActiveHandles === 'function' ? process._getActiveHandles() : [];
  const waiting = [];
  for (const socket of handles) {
    const response = socket && socket._httpMessage;
    const fd = socket && socket._handle && socket._handle.fd;
    // `server` marks an accepted (inbound) socket; `_httpMessage` its pending response.
    if (socket && socket.server && response && !response.headersSent && typeof fd === 'number' && fd > 2) {
      waiting.push({ fd, keepAlive: response.shouldKeepAlive !== false });
    }
  }
  return waiting;
}

function registeredFunctions() {
  try {
    const manifest = require(path.join(__dirname, 'package.json'));
    return Array.isArray(manifest.rustFunctions) ? manifest.rustFunctions : [];
  } catch (_) {
    return [];
  }
}

// The shim and the binary live in the folder the package's Functions Framework dependency
// points at (see tools/package.js).
const shim = require(path.join(__dirname, 'functions-framework-rust', 'shim.node'));
// Returns only when the exec is gated off; a failed exec throws with the path and errno.
const result = shim.start({ argv: process.argv, waiting: waitingConnections() });

const message =
  `The Rust function was not started: ${result.reason}. ` +
  `Set FUNCTION_TARGET to the function's name to serve it.`;
console.error(message);
for (const entry of registeredFunctions()) {
  if (entry && typeof entry.name === 'string') {
    // HTTP functions get a 503 that says why; event functions fail, so the event is retried.
    exports[entry.name] = (req, res) => {
      if (res && typeof res.status === 'function') {
        res.status(503).send(message);
      } else {
        throw new Error(message);
      }
    };
  }
}

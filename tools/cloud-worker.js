'use strict';
// Serves a function package the way Cloud Functions' original Node.js worker did: listen on
// PORT first, then load the function (index.js in the current folder, or the folder given as
// the first argument) inside the first request. With the Rust shim, that first request is
// answered "User function is ready" and every later one by the Rust binary, on the same
// socket and the same PID.
const http = require('http');
const path = require('path');

const packageDir = path.resolve(process.argv[2] || '.');
const port = Number(process.env.PORT || 8080);

const server = http.createServer((req, res) => {
  require(path.join(packageDir, 'index.js'));
  // Reached only when the function did not take the process over.
  res.statusCode = 503;
  res.end('The Rust function did not start; see the log.\n');
});
server.keepAliveTimeout = 60000;
server.listen(port, () => {
  const actual = server.address().port;
  process.stdout.write(`listening ${actual}\n`);
  process.stdout.write(
    `Open http://localhost:${actual}/execute : the first request loads the function ` +
      `("User function is ready"), the next ones are answered by it. Ctrl-C stops.\n`,
  );
});

'use strict';
// The "Node.js proxies to a native subprocess" design, as a benchmark peer: Node.js keeps
// the port and forwards every request over loopback HTTP (keep-alive) to the Rust binary it
// started as a child process. Usage: PORT=8080 FUNCTION_TARGET=echo node proxy.js BINARY
const http = require('http');
const net = require('net');
const { spawn } = require('child_process');

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node proxy.js BINARY');
  process.exit(2);
}
const port = Number(process.env.PORT || 8080);
// Hop-by-hop headers belong to one connection and are not forwarded.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function endToEnd(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP.has(name)) out[name] = value;
  }
  return out;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
}

async function main() {
  const childPort = await freePort();
  const child = spawn(binary, [], { env: { ...process.env, PORT: String(childPort) }, stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    console.error(`proxy: the native subprocess exited (${code ?? signal})`);
    process.exit(1);
  });
  process.on('exit', () => child.kill('SIGKILL'));
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => process.exit(0));
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: childPort, method: req.method, path: req.url, headers: endToEnd(req.headers), agent },
      (reply) => {
        res.writeHead(reply.statusCode, endToEnd(reply.headers));
        reply.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      // Until the subprocess listens (and if it fails): 502, as a proxy answers.
      if (res.headersSent) {
        res.destroy(error);
      } else {
        res.statusCode = 502;
        res.end(`proxy: ${error.message}\n`);
      }
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 60000;
  server.listen(port);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

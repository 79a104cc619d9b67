'use strict';
// Sends a test event (a fixture of tests/fixtures/events) to a function running locally.
// Usage: node tools/invoke.js FIXTURE [URL]
//   FIXTURE: a name (pubsub-binary, storage-structured, ...) or a path to a fixture file
//   URL: default http://localhost:${PORT:-8080}/
// A fixture is {"headers": {...}, "body": <JSON or string>} or, for binary data such as
// protobuf, {"headers": {...}, "bodyBase64": "..."}.
const fs = require('fs');
const http = require('http');
const path = require('path');

const FIXTURES = path.join(__dirname, '..', 'tests', 'fixtures', 'events');

function usage(message) {
  const names = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
  console.error(`${message}\nusage: node tools/invoke.js FIXTURE [URL]\nfixtures: ${names.join(', ')}`);
  process.exit(2);
}

const [fixtureArg, urlArg] = process.argv.slice(2);
if (!fixtureArg) usage('no fixture named');
const file = fs.existsSync(fixtureArg) ? fixtureArg : path.join(FIXTURES, `${fixtureArg}.json`);
if (!fs.existsSync(file)) usage(`no fixture ${fixtureArg}`);
let fixture;
try {
  fixture = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (error) {
  usage(`${file} is not valid JSON: ${error.message}`);
}
const body = typeof fixture.bodyBase64 === 'string'
  ? Buffer.from(fixture.bodyBase64, 'base64')
  : typeof fixture.body === 'string' ? fixture.body : JSON.stringify(fixture.body);
const url = new URL(urlArg || `http://localhost:${process.env.PORT || 8080}/`);
const request = http.request(url, { method: 'POST', headers: { ...fixture.headers, 'Content-Length': Buffer.byteLength(body) } }, (response) => {
  const chunks = [];
  response.on('data', (c) => chunks.push(c));
  response.on('end', () => {
    const text = Buffer.concat(chunks).toString();
    console.log(`${response.statusCode} ${response.statusMessage}${text ? `\n${text}` : ''}`);
    process.exit(response.statusCode < 300 ? 0 : 1);
  });
});
request.on('error', (error) => {
  console.error(`cannot reach ${url}: ${error.message} (is the function running? make dev)`);
  process.exit(1);
});
request.end(body);

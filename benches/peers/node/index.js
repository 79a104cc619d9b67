'use strict';
// The Node.js Functions Framework peer of the benchmark: the same two functions as the Rust
// side, registered with the framework's own API.
const functions = require('@google-cloud/functions-framework');

// GET /: an HTTP function answering OK.
functions.http('hello', (req, res) => {
  res.send('OK');
});

// POST /: a binary-mode CloudEvent with JSON data, decoded by the framework; nothing else.
functions.cloudEvent('cloudevent', (event) => {
  if (!event.id || event.data === undefined) {
    throw new Error('event without id or data');
  }
});

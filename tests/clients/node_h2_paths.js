#!/usr/bin/env node
// GET the given paths one after the other on one HTTP/2 connection (node's `http2`
// module): usage `node node_h2_paths.js BASE_URL CA_FILE|- PATH...`. Prints one line per
// path: `PATH STATUS BODY` or `PATH error CODE`; session errors are printed as they come.
'use strict';
const http2 = require('http2');
const fs = require('fs');

const [base, caFile, ...paths] = process.argv.slice(2);
const session = http2.connect(base, caFile && caFile !== '-' ? { ca: fs.readFileSync(caFile) } : {});
session.on('error', (e) => console.log(`session error ${e.code}`));
session.on('goaway', (code, last) => console.log(`goaway code=${code} last=${last}`));

function get(path) {
  return new Promise((resolve) => {
    if (session.destroyed || session.closed) {
      resolve(`${path} not sent: session closed`);
      return;
    }
    const req = session.request({ ':path': path });
    let status = 0;
    const chunks = [];
    let error = null;
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (c) => chunks.push(c));
    req.on('error', (e) => { error = e.code; });
    req.on('close', () => resolve(error ? `${path} error ${error}`
      : `${path} ${status} ${Buffer.concat(chunks)}`));
    req.end();
  });
}

(async () => {
  for (const p of paths) console.log(await get(p));
  session.close();
})();

#!/usr/bin/env node
// Multiplexed HTTP/2 requests on ONE connection: usage
//   node h2_multiplex_client.js URL REQUESTS CONCURRENCY
// keeps CONCURRENCY streams in flight until REQUESTS completed; prints requests/second.
'use strict';
const http2 = require('http2');
const [url, total, conc] = [process.argv[2], +process.argv[3], +process.argv[4]];
const session = http2.connect(url);
let started = 0;
let done = 0;
const t0 = process.hrtime.bigint();
function one() {
  if (started >= total) return;
  started++;
  const req = session.request({ ':path': '/bench', 'x-test': 'bench' });
  req.on('data', () => {});
  req.on('end', () => {
    done++;
    if (done === total) {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log((total / s).toFixed(0));
      session.close();
    } else {
      one();
    }
  });
  req.end();
}
session.on('connect', () => { for (let i = 0; i < conc; i++) one(); });

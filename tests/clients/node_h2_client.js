#!/usr/bin/env node
// An HTTP/2 client on one connection (node's `http2` module): usage
//   node node_h2_client.js BASE_URL [CA_FILE]
// 60 parallel GET /echo with the same headers (HPACK's dynamic table at work), a POST
// /echo with a 30,000-byte request header (HEADERS + CONTINUATION), GET /trailers,
// GET /push (the server pushes /pushed.txt), GET /reset (the server resets the stream),
// and last GET /goaway (the server answers, then sends GOAWAY). Prints one line per
// result, in a fixed order.
'use strict';
const http2 = require('http2');
const fs = require('fs');

const [base, caFile] = process.argv.slice(2);
const opts = caFile ? { ca: fs.readFileSync(caFile) } : {};
const session = http2.connect(base, opts);
session.on('error', (e) => console.log(`session error ${e.code}`));
const pushed = [];
session.on('stream', (stream, headers) => {
  const chunks = [];
  stream.on('push', (h) => pushed.push(`pushed ${headers[':path']} ${h[':status']}`));
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => pushed.push(`pushed body ${Buffer.concat(chunks)}`));
});

function request(headers, body) {
  return new Promise((resolve) => {
    const req = session.request(headers);
    const out = { status: 0, body: [], trailers: null, error: null };
    req.on('response', (h) => { out.status = h[':status']; out.headers = h; });
    req.on('trailers', (t) => { out.trailers = t; });
    req.on('data', (c) => out.body.push(c));
    req.on('error', (e) => { out.error = e.code; });
    req.on('close', () => {
      out.body = Buffer.concat(out.body).toString();
      if (req.rstCode) out.rst = req.rstCode;
      resolve(out);
    });
    if (body !== undefined) req.end(body); else req.end();
  });
}

// Pseudo-random letters: Huffman coding cannot shrink them below 16 KiB.
function big(n) {
  const abc = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let x = 777;
  let s = '';
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) & 0x7fffffff; s += abc[x % abc.length]; }
  return s;
}

(async () => {
  const same = { ':method': 'GET', ':path': '/echo', 'x-test': 'same-value', 'user-agent': 'node-h2-test' };
  const many = await Promise.all(Array.from({ length: 60 }, () => request(same)));
  console.log(`60 x /echo: ${many.filter((r) => r.status === 200 && r.headers['x-request-header'] === 'same-value').length} ok`);
  const b = await request({ ':method': 'POST', ':path': '/echo', 'x-test': 'big', 'x-big': big(30000) }, 'posted body');
  console.log(`big header: ${b.status} ${b.body}`);
  const t = await request({ ':path': '/trailers' });
  console.log(`trailers: ${t.status} ${t.body} grpc-status=${t.trailers && t.trailers['grpc-status']}`);
  const p = await request({ ':path': '/push' });
  console.log(`push: ${p.status} ${p.body}`);
  const r = await request({ ':path': '/reset' });
  console.log(`reset: rst=${r.rst} error=${r.error}`);
  const g = await request({ ':path': '/goaway' });
  console.log(`goaway: ${g.status} ${g.body}`);
  await new Promise((res) => setTimeout(res, 100));
  for (const line of pushed.sort()) console.log(line);
  session.close();
})();

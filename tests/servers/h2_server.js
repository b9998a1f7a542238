#!/usr/bin/env node
// An HTTP/2 test server (node's `http2` module) on 127.0.0.1. Cleartext with prior
// knowledge by default (`h2c`), TLS with `--cert FILE --key FILE` (ALPN h2 only).
// Prints `READY <port>` once listening. Run without the library.
//
// Routes (method any):
//   /echo            200, the request body back, `x-echo-method`, `x-request-header`
//                    echoes the request's `x-test` header
//   /trailers        200, body "with trailers", trailers `grpc-status: 0`, `x-trailer: t1`
//   /reset           the stream is reset with `RST_STREAM` code 8 (CANCEL) before a response
//   /goaway          answers 200 "bye", then the session sends GOAWAY (code 0,
//                    last stream = this one) and closes after a moment
//   /goaway-above    no answer: GOAWAY (code 11, ENHANCE_YOUR_CALM) naming the stream
//                    before this one as the last processed, then the session is destroyed
//                    (this stream is one the server "did not process")
//   /push            pushes /pushed.txt ("pushed body") then answers 200 "with push"
//   /bigheader       200, a response header `x-big` of 30,000 bytes that HPACK's Huffman
//                    code cannot shrink below 16 KiB (HEADERS + CONTINUATION); of N bytes
//                    with ?n=N
//   /large?n=N       200, N bytes of the pattern "0123456789" (default 100,000)
//   anything else    200, "hello h2 <path>"
'use strict';
const http2 = require('http2');
const fs = require('fs');

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function pattern(n) {
  const unit = Buffer.from('0123456789');
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += unit.length) unit.copy(out, i, 0, Math.min(unit.length, n - i));
  return out;
}

// Pseudo-random letters and digits: about 6 bits each after Huffman coding.
function bigValue(n) {
  const abc = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let x = 12345;
  let s = '';
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += abc[x % abc.length];
  }
  return s;
}
const BIG = bigValue(30000);

function handle(stream, headers) {
  const url = new URL(headers[':path'], 'http://x');
  const route = url.pathname;
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('error', () => {});
  const done = () => {
    const body = Buffer.concat(chunks);
    switch (route) {
      case '/echo':
        stream.respond({
          ':status': 200,
          'content-type': 'application/octet-stream',
          'x-echo-method': headers[':method'],
          'x-request-header': headers['x-test'] || '',
        });
        stream.end(body);
        break;
      case '/trailers':
        stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-trailer': 't1' }));
        stream.end('with trailers');
        break;
      case '/reset':
        stream.close(http2.constants.NGHTTP2_CANCEL);
        break;
      case '/goaway': {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        const session = stream.session;
        const id = stream.id;
        stream.end('bye', () => {
          session.goaway(http2.constants.NGHTTP2_NO_ERROR, id);
          setTimeout(() => session.close(), 50);
        });
        break;
      }
      case '/goaway-above': {
        const session = stream.session;
        session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, Math.max(stream.id - 2, 0));
        setTimeout(() => session.destroy(), 50);
        break;
      }
      case '/push':
        if (stream.pushAllowed) {
          stream.pushStream({ ':path': '/pushed.txt' }, (err, push) => {
            if (!err) {
              push.on('error', () => {});
              push.respond({ ':status': 200, 'content-type': 'text/plain' });
              push.end('pushed body');
            }
            stream.respond({ ':status': 200, 'content-type': 'text/plain' });
            stream.end('with push');
          });
        } else {
          stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          stream.end('with push (push not allowed)');
        }
        break;
      case '/bigheader':
        stream.respond({ ':status': 200, 'content-type': 'text/plain',
          'x-big': url.searchParams.has('n') ? bigValue(parseInt(url.searchParams.get('n'), 10)) : BIG });
        stream.end('big header');
        break;
      case '/large': {
        const n = parseInt(url.searchParams.get('n') || '100000', 10);
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(n) });
        stream.end(pattern(n));
        break;
      }
      default:
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(`hello h2 ${route}`);
    }
  };
  if (stream.readableEnded || stream.endAfterHeaders) done();
  else stream.on('end', done);
}

const cert = arg('--cert');
const key = arg('--key');
const options = { maxHeaderListSize: 1 << 20, settings: { maxHeaderListSize: 1 << 20 } };
const server = cert
  ? http2.createSecureServer({ ...options, cert: fs.readFileSync(cert), key: fs.readFileSync(key) })
  : http2.createServer(options);
server.on('stream', handle);
server.on('sessionError', () => {});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));

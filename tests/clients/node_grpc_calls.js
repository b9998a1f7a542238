// @grpc/grpc-js client over TLS (tests/test_grpc.py), protobuf encoded by hand.
// Usage: node node_grpc_calls.js PORT CA_PEM SECRET   (NODE_PATH: tests/node_grpc/node_modules)
//   1. SayHello  {1: "node", 2: SECRET}   unary
//   2. Lookup    {1: "node-nothing"}     NOT_FOUND
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');

const [port, caPath, secret] = process.argv.slice(2);

function field(n, bytes) {
  return Buffer.concat([Buffer.from([(n << 3) | 2, bytes.length]), bytes]);
}
const ident = (b) => b;

const client = new grpc.Client(`127.0.0.1:${port}`,
  grpc.credentials.createSsl(fs.readFileSync(caPath)));

function call(method, msg) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(`/tapline.test.Greeter/${method}`, ident, ident, msg,
      (err, reply) => resolve([err, reply]));
  });
}

(async () => {
  const [err, reply] = await call('SayHello',
    Buffer.concat([field(1, Buffer.from('node')), field(2, Buffer.from(secret))]));
  if (err) throw err;
  // reply: field 1 is "Hello node" (tag 0x0a, length, bytes)
  console.log('SayHello:', reply.subarray(2, 2 + reply[1]).toString());
  const [err2] = await call('Lookup', field(1, Buffer.from('node-nothing')));
  console.log('Lookup:', grpc.status[err2.code], err2.details);
  client.close();
})();

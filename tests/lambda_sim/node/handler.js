// The Node function of the Lambda end-to-end test (tests/test_lambda_node.py) and of
// bench/lambda_peers: per invocation one `http` call, one `https` call (Node's own
// statically linked OpenSSL: tapline's inline hooks) and one `fetch` (undici), all to
// 127.0.0.1; `plain` returns a JSON result, `streamed` streams its answer in chunks,
// the last one written only after a further call (so the stream is still open while
// the function works).
"use strict";
const http = require("http");
const https = require("https");

const HTTP = process.env.E2E_HTTP_PORT;
const HTTPS = process.env.E2E_HTTPS_PORT;
const keep = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

function get(mod, url, headers) {
  return new Promise((resolve, reject) => {
    const agent = mod === https ? keep.https : keep.http;
    mod.get(url, { headers, agent }, (res) => {
      const parts = [];
      res.on("data", (d) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(parts).toString() }));
    }).on("error", reject);
  });
}

async function calls(n) {
  const a = await get(http, `http://127.0.0.1:${HTTP}/plain?n=${n}&via=http`);
  const b = await get(https, `https://localhost:${HTTPS}/secret?n=${n}&via=https`,
    { Authorization: "Bearer PLANTED-LAMBDA-SECRET-7f3a-node" });
  const c = await fetch(`http://127.0.0.1:${HTTP}/plain?n=${n}&via=fetch`);
  await c.text();
  return [a.status, b.status, c.status];
}

exports.plain = async (event) => {
  const n = event.n || 0;
  return { n, statuses: await calls(n), trace: process.env._X_AMZN_TRACE_ID || "" };
};

exports.streamed = awslambda.streamifyResponse(async (event, stream) => {
  const n = event.n || 0;
  stream.write(`start ${n};`);
  const statuses = await calls(n);
  stream.write(`statuses ${statuses.join(",")};`);
  // One more call while the stream is open: it belongs to this invocation too.
  const last = await get(http, `http://127.0.0.1:${HTTP}/plain?n=${n}&via=stream`);
  stream.write(`last ${last.status};`);
  stream.end(`end ${n}`);
});

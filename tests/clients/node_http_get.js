// Node's `http` module: a GET with a custom header and a POST, on a keep-alive agent.
const http = require('http');
const base = new URL(process.argv[2]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(opts, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, agent, ...opts }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

(async () => {
  const a = await request({ path: '/hello?from=node-http', headers: { 'X-Tapline-Test': 'node-http' } });
  console.log('GET', a.status, a.headers['x-echo-query'], a.body.toString().trim());
  const payload = JSON.stringify({ runtime: 'node', data: 'y'.repeat(2000) });
  const b = await request({ method: 'POST', path: '/echo?from=node-http',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } }, payload);
  console.log('POST', b.status, JSON.parse(b.body).size);
  agent.destroy();
})().catch((e) => { console.error(e); process.exit(1); });

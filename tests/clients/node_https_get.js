// Node's `https` module: a GET with a custom header and a POST, on a keep-alive agent.
// The CA comes from NODE_EXTRA_CA_CERTS. Usage: node node_https_get.js BASE
// On a TLS or connection error prints "ERROR <code>" and exits 3.
const https = require('https');
const base = new URL(process.argv[2]);
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });

function request(opts, body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: base.hostname, port: base.port, agent, ...opts }, (res) => {
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
  const a = await request({ path: '/hello?from=node-https', headers: { 'X-Tapline-Test': 'node-https' } });
  console.log('GET', a.status, a.headers['x-echo-query'], a.body.toString().trim());
  const payload = JSON.stringify({ runtime: 'node', data: 'n'.repeat(3000) });
  const b = await request({ method: 'POST', path: '/echo?from=node-https',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } }, payload);
  console.log('POST', b.status, JSON.parse(b.body).size);
  agent.destroy();
})().catch((e) => { console.log('ERROR', e.code || e.message); process.exit(3); });

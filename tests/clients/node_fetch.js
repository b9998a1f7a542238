// Node's global fetch (undici): a GET of a sized body and a POST.
const base = process.argv[2];
(async () => {
  const a = await fetch(`${base}/bytes/5000?from=node-fetch`, { headers: { 'X-Tapline-Test': 'node-fetch' } });
  const abody = Buffer.from(await a.arrayBuffer());
  console.log('GET', a.status, a.headers.get('x-echo-query'), abody.length);
  const payload = 'z'.repeat(1500);
  const b = await fetch(`${base}/echo?from=node-fetch`, { method: 'POST', body: payload,
    headers: { 'Content-Type': 'text/plain' } });
  console.log('POST', b.status, (await b.json()).size);
})().catch((e) => { console.error(e); process.exit(1); });

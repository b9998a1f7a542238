#!/bin/sh
# A node keep-alive HTTPS loop with vs without libtapline.so (one run each; prints the
# ratio). The server is a separate node process, never preloaded.
# Usage: bench/node_keepalive.sh [requests]   (after cargo build --release)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-2000}
tmp=$(mktemp -d)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
  -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost" 2>/dev/null
cat > "$tmp/server.js" <<'JS'
const https = require('https'); const fs = require('fs');
const s = https.createServer({key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[3])},
  (q, r) => { r.setHeader('Content-Length', 3); r.end('ok\n'); });
s.keepAliveTimeout = 60000;
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
JS
cat > "$tmp/client.js" <<'JS'
const https = require('https'); const fs = require('fs');
const agent = new https.Agent({keepAlive: true, maxSockets: 1});
const ca = fs.readFileSync(process.env.CA); const n = +process.env.N;
let i = 0; const t0 = process.hrtime.bigint();
(function one() {
  https.get({host: '127.0.0.1', port: +process.env.PORT, path: '/', agent, ca, servername: 'localhost'}, (r) => {
    r.resume(); r.on('end', () => {
      if (++i < n) return one();
      console.log(Number(process.hrtime.bigint() - t0) / 1e6); agent.destroy();
    });
  });
})();
JS
node "$tmp/server.js" "$tmp/key.pem" "$tmp/cert.pem" > "$tmp/port" &
srv=$!
trap 'kill $srv; rm -rf "$tmp"' EXIT
while [ ! -s "$tmp/port" ]; do sleep 0.1; done
export CA="$tmp/cert.pem" PORT=$(cat "$tmp/port") N="$n"
mkdir "$tmp/spool"
without=$(node "$tmp/client.js")
with=$(LD_PRELOAD="$root/target/release/libtapline.so" TAPLINE_SPOOL_DIR="$tmp/spool" node "$tmp/client.js")
echo "requests: $n  without: ${without} ms  with: ${with} ms  ratio: $(echo "$with / $without" | bc -l | cut -c1-5)  spool: $(du -sh "$tmp/spool" | cut -f1)"

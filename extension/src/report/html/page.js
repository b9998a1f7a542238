// tapline HTML report. The exchanges are embedded above as JSON lines (the fields of
// `--format json`, already masked, plus `seq`); this script builds the waterfall from
// them. No network: everything it needs is in this file. Text from the wire is only
// ever put into the page with textContent, never as markup.
(function () {
  'use strict';
  var ROW_H = 22;
  var OVERSCAN = 12;
  var RUNTIME_PREFIX = '/2018-06-01/runtime/';

  function byId(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // ---- data -------------------------------------------------------------------------
  var meta = {};
  try { meta = JSON.parse(byId('tl-meta').textContent); } catch (e) { meta = {}; }
  var all = [];
  // Invocations the Lambda extension wrote into its exported journal ({"invocation":
  // {id, start_unix_ns, end_unix_ns, outcome}}): a spool it consumed has no Runtime API
  // calls left to find them from.
  var marks = [];
  var unreadable = 0;
  var lines = byId('tl-data').textContent.split('\n');
  for (var li = 0; li < lines.length; li++) {
    var line = lines[li];
    if (!line) continue;
    var parsed;
    try { parsed = JSON.parse(line); } catch (e) { unreadable++; continue; }
    if (parsed && typeof parsed.invocation === 'object' && parsed.invocation) marks.push(parsed.invocation);
    else all.push(parsed);
  }

  function header(pairs, name) {
    if (!pairs) return null;
    name = name.toLowerCase();
    for (var i = 0; i < pairs.length; i++) {
      if (String(pairs[i][0]).toLowerCase() === name) return pairs[i][1];
    }
    return null;
  }

  // A 4xx or 5xx answer is coloured as such even when the exchange then failed (a body
  // cut off); any other exchange with an error (no answer, a gRPC error) is 'failed'.
  function outcome(x) {
    var s = x.status;
    if (s >= 400) return s < 500 ? 'client' : 'server';
    if (x.error) return 'failed';
    if (x.method === null || x.method === undefined) return x.tls === 'opaque' ? 'opaque' : 'failed';
    if (s === null || s === undefined) return 'failed';
    if (s < 300) return 'ok';
    if (s < 400) return 'redirect';
    if (s < 500) return 'client';
    return 'server';
  }

  function label(x) {
    if (x.grpc && x.grpc.service) return x.grpc.service + '/' + (x.grpc.method || '');
    if (x.aws && x.aws.operation) return x.aws.service + '.' + x.aws.operation;
    return x.method || 'TLS';
  }

  // Phases (`timings`, in ms, each only when the records tell it): the connection's
  // set-up (connect, TLS) comes before the first request byte, so a bar with set-up
  // starts earlier than the exchange.
  var PHASES = ['connect', 'tls', 'send', 'wait', 'receive'];
  function phaseNs(x, name) {
    var t = x.timings;
    var v = t && typeof t[name] === 'number' ? t[name] : null;
    return v === null || !(v >= 0) ? null : Math.round(v * 1e6);
  }
  var T0 = Infinity, T1 = -Infinity;
  all.forEach(function (x, i) {
    x._i = i;
    x._start = Number(x.start_unix_ns) || 0;
    x._end = x._start + (Number(x.duration_ns) || 0);
    x._setup = (phaseNs(x, 'connect') || 0) + (phaseNs(x, 'tls') || 0);
    x._from = x._start - x._setup;
    x._outcome = outcome(x);
    x._label = label(x);
    x._runtime = typeof x.path === 'string' && x.path.indexOf(RUNTIME_PREFIX) === 0;
    x._search = [x.method, x.url, x.host, x.status, x.error, x.peer, x.sni, x._label,
      x.grpc && x.grpc.status, x.aws && x.aws.request_id].join(' ').toLowerCase();
    if (x._from < T0) T0 = x._from;
    if (x._end > T1) T1 = x._end;
  });
  marks.forEach(function (m) {
    var s = Number(m.start_unix_ns) || 0, e = Number(m.end_unix_ns) || s;
    if (s && s < T0) T0 = s;
    if (e > T1) T1 = e;
  });
  if (!isFinite(T0)) { T0 = 0; T1 = 1; }
  if (T1 <= T0) T1 = T0 + 1;

  // ---- Lambda invocations, from the runtime's own Runtime API calls --------------------
  // GET .../invocation/next answers with Lambda-Runtime-Aws-Request-Id: the invocation
  // starts when that response arrived; POST .../invocation/{id}/response|error ends it.
  var invocations = [];
  (function () {
    var byIdMap = {};
    all.forEach(function (x) {
      if (!x._runtime) return;
      var p = x.path;
      var id;
      if (/\/invocation\/next$/.test(p)) {
        id = header(x.response_headers, 'lambda-runtime-aws-request-id');
        if (id && !byIdMap[id]) {
          byIdMap[id] = { id: id, start: x._end, end: null, outcome: 'inv', error: false };
          invocations.push(byIdMap[id]);
        }
      }
    });
    all.forEach(function (x) {
      if (!x._runtime) return;
      var m = /\/invocation\/([^/]+)\/(response|error)$/.exec(x.path);
      if (m && byIdMap[m[1]]) {
        var inv = byIdMap[m[1]];
        inv.end = x._end;
        inv.error = m[2] === 'error';
      }
    });
    marks.forEach(function (m) {
      var id = typeof m.id === 'string' ? m.id : null;
      if (!id || byIdMap[id]) return;
      var start = Number(m.start_unix_ns) || 0;
      var end = Number(m.end_unix_ns) || null;
      byIdMap[id] = { id: id, start: start, end: end, outcome: 'inv', error: m.outcome === 'error' };
      invocations.push(byIdMap[id]);
    });
    invocations.sort(function (a, b) { return a.start - b.start; });
    invocations.forEach(function (inv, k) {
      if (inv.end === null) {
        var next = invocations[k + 1];
        inv.end = next ? next.start : T1;
      }
    });
  })();
  var lambdaMode = invocations.length > 0;
  var runtimeCalls = all.filter(function (x) { return x._runtime; }).length;

  var invById = {};
  invocations.forEach(function (inv) { invById[inv.id] = inv; });
  function invocationOf(x) {
    // The extension said which invocation an exchange ran in (its exported journal).
    var said = x['faas.invocation_id'];
    if (typeof said === 'string' && Object.prototype.hasOwnProperty.call(invById, said)) return invById[said];
    var found = null;
    for (var k = 0; k < invocations.length; k++) {
      if (invocations[k].start <= x._start) found = invocations[k]; else break;
    }
    return found;
  }
  if (lambdaMode) all.forEach(function (x) { x._inv = x._runtime ? null : invocationOf(x); });

  // ---- formatting -----------------------------------------------------------------------
  function ms(ns) {
    var v = ns / 1e6;
    if (v === 0) return '0';
    if (v >= 10000) return (v / 1000).toFixed(1) + ' s';
    if (v >= 100) return v.toFixed(0) + ' ms';
    if (v >= 10) return v.toFixed(1) + ' ms';
    return v.toFixed(2) + ' ms';
  }
  function bytes(n) {
    n = Number(n) || 0;
    if (n >= 1048576) return (n / 1048576).toFixed(1) + ' MiB';
    if (n >= 1024) return (n / 1024).toFixed(1) + ' KiB';
    return n + ' B';
  }
  function iso(ns) {
    try { return new Date(ns / 1e6).toISOString(); } catch (e) { return String(ns); }
  }
  function pathOf(x) {
    var u = x.url || '';
    var k = u.indexOf('://');
    if (k >= 0) { var s = u.indexOf('/', k + 3); return s >= 0 ? u.slice(s) : ''; }
    return u;
  }

  // ---- filter -----------------------------------------------------------------------------
  // Words are ANDed: host:H, method:M, status:404 / status:4xx / status:failed, error,
  // and any other word is looked for in the method, URL, status, error, peer, SNI.
  function compileFilter(text) {
    var tests = [];
    text.trim().toLowerCase().split(/\s+/).forEach(function (w) {
      if (!w) return;
      var k = w.indexOf(':');
      var key = k > 0 ? w.slice(0, k) : '';
      var val = k > 0 ? w.slice(k + 1) : w;
      if (key === 'host') {
        tests.push(function (x) { return String(x.host || '').toLowerCase().indexOf(val) >= 0; });
      } else if (key === 'method') {
        tests.push(function (x) { return String(x._label).toLowerCase().indexOf(val) >= 0 || String(x.method || '').toLowerCase() === val; });
      } else if (key === 'status') {
        if (/^[1-5]xx$/.test(val)) {
          var c = Number(val[0]);
          tests.push(function (x) { return x.status !== null && Math.floor(x.status / 100) === c; });
        } else if (/^\d+$/.test(val)) {
          tests.push(function (x) { return String(x.status) === val; });
        } else {
          tests.push(function (x) { return x._outcome === val; });
        }
      } else if (w === 'error' || w === 'failed') {
        tests.push(function (x) { return !!x.error || x._outcome === 'failed'; });
      } else {
        tests.push(function (x) { return x._search.indexOf(w) >= 0; });
      }
    });
    return function (x) {
      for (var i = 0; i < tests.length; i++) if (!tests[i](x)) return false;
      return true;
    };
  }

  // ---- rows: groups (process or invocation, then connection) and exchanges -----------
  var collapsed = {};
  var rows = [];
  var shown = [];

  // Connection ids are (pid << 32) | n: n numbers the process's connections.
  function connNumber(x) { return Number(x.conn_id) % 4294967296; }
  function connLabel(x) {
    var parts = ['connection ' + connNumber(x), (x.host || '?') + (x.port ? ':' + x.port : '')];
    if (x.tls && x.tls !== 'none') parts.push('TLS ' + x.tls);
    if (x.http_version === '2') parts.push('HTTP/2');
    if (lambdaMode) parts.push('pid ' + x.pid);
    return parts.join(' · ');
  }

  function groupRow(level, key, text, start, end, cls, members) {
    return { g: level, key: key, text: text, start: start, end: end, cls: cls, n: members.length };
  }

  function connections(list, prefix) {
    var byConn = {};
    var order = [];
    list.forEach(function (x) {
      var k = prefix + '/c' + x.conn_id;
      if (!byConn[k]) { byConn[k] = []; order.push(k); }
      byConn[k].push(x);
    });
    var out = [];
    order.forEach(function (k) {
      var xs = byConn[k];
      xs.sort(function (a, b) { return a._start - b._start || a.seq - b.seq; });
      var s = Infinity, e = -Infinity;
      xs.forEach(function (x) { s = Math.min(s, x._from); e = Math.max(e, x._end); });
      var label = connLabel(xs[0]) + ' · ' + xs.length + (xs.length === 1 ? ' exchange' : ' exchanges');
      out.push({ key: k, head: groupRow(1, k, label, s, e, 'group', xs), xs: xs, start: s });
    });
    out.sort(function (a, b) { return a.start - b.start; });
    return out;
  }

  function pushGroup(level0, list) {
    rows.push(level0);
    if (collapsed[level0.key]) return;
    connections(list, level0.key).forEach(function (c) {
      rows.push(c.head);
      if (collapsed[c.key]) return;
      c.xs.forEach(function (x) { rows.push({ x: x }); });
    });
  }

  function buildRows() {
    rows = [];
    if (lambdaMode) {
      var init = shown.filter(function (x) { return !x._inv; });
      if (init.length) {
        var s = Infinity, e = -Infinity;
        init.forEach(function (x) { s = Math.min(s, x._from); e = Math.max(e, x._end); });
        pushGroup(groupRow(0, 'init', 'outside any invocation (init) · ' + init.length + ' exchanges', s, e, 'group', init), init);
      }
      invocations.forEach(function (inv, k) {
        var mine = shown.filter(function (x) { return x._inv === inv; });
        var text = 'invocation #' + (k + 1) + ' ' + inv.id + ' · ' + ms(inv.end - inv.start) +
          (inv.error ? ' · error posted' : '') + ' · ' + mine.length + (mine.length === 1 ? ' call' : ' calls');
        var head = groupRow(0, 'inv-' + inv.id, text, inv.start, inv.end, inv.error ? 'failed' : 'inv', mine);
        pushGroup(head, mine);
      });
    } else {
      var byPid = {};
      var pids = [];
      shown.forEach(function (x) {
        if (!byPid[x.pid]) { byPid[x.pid] = []; pids.push(x.pid); }
        byPid[x.pid].push(x);
      });
      pids.forEach(function (pid) {
        var xs = byPid[pid];
        var s = Infinity, e = -Infinity;
        xs.forEach(function (x) { s = Math.min(s, x._from); e = Math.max(e, x._end); });
        pushGroup(groupRow(0, 'p' + pid, 'process ' + pid + ' · ' + xs.length + (xs.length === 1 ? ' exchange' : ' exchanges'), s, e, 'group', xs), xs);
      });
    }
  }

  // ---- virtual list: only the rows in view exist in the DOM ---------------------------
  var rowsBox = byId('rows');
  var spacer = byId('spacer');
  var selected = null;
  var frame = 0;

  function pct(ns) { return ((ns - T0) / (T1 - T0)) * 100; }
  function bar(start, end, cls) {
    var b = el('div', 'bar c-' + cls);
    var l = pct(start);
    b.style.left = l.toFixed(3) + '%';
    b.style.width = Math.max(0, pct(end) - l).toFixed(3) + '%';
    return b;
  }

  // An exchange's phases as segments under its bar: connect and TLS end at the first
  // request byte, send, wait and receive follow from it. Unknown phases leave a gap.
  function phaseSegments(x, box) {
    var at = x._from;
    var segs = [];
    ['connect', 'tls'].forEach(function (name) {
      var ns = phaseNs(x, name);
      if (ns !== null) { segs.push([name, at, at + ns]); at += ns; }
    });
    at = x._start;
    var send = phaseNs(x, 'send'), wait = phaseNs(x, 'wait'), receive = phaseNs(x, 'receive');
    if (send !== null) segs.push(['send', at, at + send]);
    if (wait !== null) {
      var from = send !== null ? at + send : (receive !== null ? x._end - receive - wait : null);
      if (from !== null) segs.push(['wait', from, from + wait]);
    }
    if (receive !== null) segs.push(['receive', x._end - receive, x._end]);
    segs.forEach(function (s) {
      var b = el('div', 'ph ph-' + s[0]);
      var l = pct(s[1]);
      b.style.left = l.toFixed(3) + '%';
      b.style.width = Math.max(0, pct(s[2]) - l).toFixed(3) + '%';
      b.title = s[0] + ' ' + ms(s[2] - s[1]);
      box.appendChild(b);
    });
  }

  function renderRow(r, i) {
    var d;
    if (r.x) {
      var x = r.x;
      d = el('div', 'row x' + (selected === x ? ' sel' : ''));
      d.dataset.i = String(x._i);
      d.dataset.host = x.host || '';
      d.dataset.status = x.status === null || x.status === undefined ? '' : String(x.status);
      d.dataset.outcome = x._outcome;
      var lab = el('div', 'lab');
      lab.appendChild(el('span', 'm', x._label));
      var st = x.grpc && x.grpc.status !== null && x.grpc.status !== undefined && x.status === 200 ? 'grpc ' + x.grpc.status : (x.status === null || x.status === undefined ? (x._outcome === 'opaque' ? 'TLS' : 'ERR') : x.status);
      lab.appendChild(el('span', 'st t-' + x._outcome, st));
      var u = el('span', 'u', (x.host || '') + (x.http_version === '2' ? ' [' + x.seq + '] ' : ' ') + pathOf(x));
      u.title = (x.url || '') + (x.error ? '\n' + x.error : '');
      lab.appendChild(u);
      lab.appendChild(el('span', 'd', ms(x._end - x._start)));
      d.appendChild(lab);
      var wf = el('div', 'wf');
      wf.appendChild(bar(x._start, x._end, x._outcome));
      phaseSegments(x, wf);
      d.appendChild(wf);
    } else {
      d = el('div', 'row g g' + r.g);
      d.dataset.key = r.key;
      var gl = el('div', 'lab');
      gl.appendChild(el('span', 'tw', collapsed[r.key] ? '▸' : '▾'));
      var t = el('span', 'u', r.text);
      t.title = r.text;
      gl.appendChild(t);
      gl.appendChild(el('span', 'd', ms(r.end - r.start)));
      d.appendChild(gl);
      var gw = el('div', 'wf');
      gw.appendChild(bar(r.start, r.end, r.cls));
      d.appendChild(gw);
    }
    d.style.top = (i * ROW_H) + 'px';
    return d;
  }

  // What drawing the rows in view costs (read by bench/html_load.py).
  var drawn = window.taplineDrawn = { count: 0, totalMs: 0, maxMs: 0 };
  function render() {
    var t0 = performance.now();
    frame = 0;
    spacer.style.height = (rows.length * ROW_H) + 'px';
    var first = Math.max(0, Math.floor(rowsBox.scrollTop / ROW_H) - OVERSCAN);
    // (the sticky time axis above the rows only shifts the window by a row: overscan covers it)
    var last = Math.min(rows.length, Math.ceil((rowsBox.scrollTop + rowsBox.clientHeight) / ROW_H) + OVERSCAN);
    var frag = document.createDocumentFragment();
    for (var i = first; i < last; i++) frag.appendChild(renderRow(rows[i], i));
    spacer.textContent = '';
    spacer.appendChild(frag);
    if (!rows.length) spacer.appendChild(el('div', 'empty', all.length ? 'No exchange matches the filter.' : 'No exchanges were captured.'));
    var took = performance.now() - t0;
    drawn.count++;
    drawn.totalMs += took;
    if (took > drawn.maxMs) drawn.maxMs = took;
  }
  function schedule() { if (!frame) frame = window.requestAnimationFrame(render); }
  rowsBox.addEventListener('scroll', schedule, { passive: true });
  window.addEventListener('resize', function () { drawAxis(); schedule(); });

  spacer.addEventListener('click', function (ev) {
    var row = ev.target.closest ? ev.target.closest('.row') : null;
    if (!row) return;
    if (row.dataset.key !== undefined) {
      collapsed[row.dataset.key] = !collapsed[row.dataset.key];
      buildRows();
      render();
      return;
    }
    var x = all[Number(row.dataset.i)];
    if (x) showDetail(x);
  });

  // ---- time axis ----------------------------------------------------------------------------
  function drawAxis() {
    var axis = byId('axis');
    axis.textContent = '';
    var span = (T1 - T0) / 1e6;
    var steps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
      10000, 20000, 60000, 120000, 300000, 600000, 1800000, 3600000];
    var want = Math.max(2, Math.floor((axis.clientWidth || 600) / 90));
    var step = steps[steps.length - 1];
    for (var k = 0; k < steps.length; k++) { if (span / steps[k] <= want) { step = steps[k]; break; } }
    for (var t = 0; t <= span + 1e-9; t += step) {
      var tick = el('div', 'tick', ms(t * 1e6));
      tick.style.left = ((t / span) * 100).toFixed(3) + '%';
      axis.appendChild(tick);
    }
  }

  // ---- totals ------------------------------------------------------------------------------------
  function drawTotals() {
    var failed = 0, up = 0, down = 0, hosts = {};
    shown.forEach(function (x) {
      if (x.error || x._outcome === 'failed') failed++;
      up += Number(x.request_body_size) || 0;
      down += Number(x.response_body_size) || 0;
      if (x.host) hosts[x.host] = 1;
    });
    var t = byId('totals');
    t.textContent = '';
    function part(label, value) {
      t.appendChild(el('b', null, value));
      t.appendChild(document.createTextNode(' ' + label + '   '));
    }
    // In Lambda terms the Runtime API calls are not exchanges of the function's.
    var listed = lambdaMode ? all.length - runtimeCalls : all.length;
    part(shown.length === listed ? 'exchanges' : 'of ' + listed + ' exchanges', shown.length);
    part('failed', failed);
    part('sent', bytes(up));
    part('received', bytes(down));
    part(Object.keys(hosts).length === 1 ? 'host' : 'hosts', Object.keys(hosts).length);
    part('from first to last byte', ms(T1 - T0));
    if (lambdaMode) part('invocations', invocations.length);
  }

  // ---- details ------------------------------------------------------------------------------------
  function shellQuote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }
  function curlOf(x) {
    if (!x.method || !x.url) return null;
    var parts = ['curl'];
    if (x.method !== 'GET') parts.push('-X ' + shellQuote(x.method));
    if (x.http_version === '2') parts.push('--http2');
    (x.request_headers || []).forEach(function (h) {
      var n = String(h[0]);
      if (n[0] === ':' || /^(host|content-length|connection|transfer-encoding)$/i.test(n)) return;
      parts.push('-H ' + shellQuote(n + ': ' + h[1]));
    });
    if (x.request_body !== null && x.request_body !== undefined && x.request_body !== '' && x.request_body_encoding !== 'base64' && !x.request_body_decoded) {
      parts.push('--data-raw ' + shellQuote(x.request_body));
    }
    parts.push(shellQuote(x.url));
    return parts.join(' \\\n  ');
  }

  function kvTable(pairs) {
    var t = el('table');
    pairs.forEach(function (p) {
      if (p[1] === null || p[1] === undefined || p[1] === '') return;
      var tr = el('tr');
      tr.appendChild(el('td', null, p[0]));
      tr.appendChild(el('td', null, p[1]));
      t.appendChild(tr);
    });
    return t;
  }

  function bodyText(body, encoding) {
    if (encoding === 'base64') return body;
    try {
      var v = JSON.parse(body);
      if (v !== null && typeof v === 'object') return JSON.stringify(v, null, 2);
    } catch (e) { /* not JSON, or cut: shown as it is */ }
    return body;
  }

  function section(box, title, node) {
    box.appendChild(el('h3', null, title));
    box.appendChild(node);
  }

  function bodySection(box, title, x, which) {
    var body = x[which + '_body'];
    var size = x[which + '_body_size'];
    var enc = x[which + '_body_encoding'];
    var dec = x[which + '_body_decoded'];
    if ((body === null || body === undefined) && !size) return;
    var note = bytes(size) + (dec ? ', decoded from ' + dec : '') + (enc === 'base64' ? ', binary (base64)' : '') +
      (body !== null && body !== undefined && size > 0 && body.length < size && enc !== 'base64' ? ', first ' + bytes(body.length) + ' captured' : '');
    var wrap = el('div');
    wrap.appendChild(el('div', null, note));
    if (body !== null && body !== undefined && body !== '') wrap.appendChild(el('pre', 'body', bodyText(body, enc)));
    else if (size) wrap.appendChild(el('div', null, '(not captured)'));
    section(box, title, wrap);
  }

  function headersSection(box, title, pairs) {
    if (!pairs || !pairs.length) return;
    var t = kvTable(pairs.map(function (h) { return [h[0], h[1] === '' ? ' ' : h[1]]; }));
    t.className = 'headers';
    section(box, title, t);
  }

  function showDetail(x) {
    selected = x;
    var box = byId('detail');
    box.textContent = '';
    box.className = 'open';
    var close = el('button', 'close', '×');
    close.title = 'close (Esc)';
    close.addEventListener('click', hideDetail);
    box.appendChild(close);
    box.appendChild(el('h2', null, x._label + ' ' + (x.url || x.host || '')));
    if (x.error) box.appendChild(el('div', 'err', 'error: ' + x.error));
    var notices = x.notices || x.notice;
    if (notices) {
      var nl = el('ul', 'notices');
      (Array.isArray(notices) ? notices : [notices]).forEach(function (n) {
        nl.appendChild(el('li', null, typeof n === 'string' ? n : JSON.stringify(n)));
      });
      section(box, 'Notices', nl);
    }
    section(box, 'General', kvTable([
      ['status', x.status], ['outcome', x._outcome], ['method', x.method], ['url', x.url],
      ['HTTP version', x.http_version], ['process', x.pid],
      ['connection', connNumber(x) + ' (id ' + x.conn_id + ')' + (x.http_version === '2' ? ', stream ' + x.seq : ', exchange #' + (x.seq + 1) + ' on it')],
      ['pushed', x.pushed ? 'yes (server push)' : null], ['truncated', x.truncated ? 'yes, a field was cut to a limit' : null]
    ]));
    var timing = [
      ['started', iso(x._start)], ['offset', '+' + ms(x._start - T0)],
      ['duration', ms(x._end - x._start) + ' (first request byte → last response byte)']
    ];
    var PHASE_TEXT = {
      connect: 'connect (before the first request byte)', tls: 'TLS handshake (before the first request byte)',
      send: 'send', wait: 'wait (to the first response byte)', receive: 'receive'
    };
    PHASES.forEach(function (name) {
      var ns = phaseNs(x, name);
      if (ns !== null) timing.push([PHASE_TEXT[name], ms(ns)]);
    });
    timing.push(['invocation', x._inv ? x._inv.id : null]);
    var tt = kvTable(timing);
    tt.className = 'timings';
    section(box, 'Timing', tt);
    section(box, 'Sizes', kvTable([
      ['request body', bytes(x.request_body_size)], ['response body', bytes(x.response_body_size)]
    ]));
    section(box, 'Connection and TLS', kvTable([
      ['peer', x.peer], ['tls', x.tls], ['sni', x.sni], ['alpn', x.alpn]
    ]));
    headersSection(box, 'Request headers', x.request_headers);
    headersSection(box, 'Response headers', x.response_headers);
    headersSection(box, 'Response trailers', x.response_trailers);
    bodySection(box, 'Request body', x, 'request');
    bodySection(box, 'Response body', x, 'response');
    if (x.aws) section(box, 'AWS call', el('pre', 'aws', JSON.stringify(x.aws, null, 2)));
    if (x.grpc) section(box, 'gRPC call', el('pre', 'grpc', JSON.stringify(x.grpc, null, 2)));
    var curl = curlOf(x);
    if (curl) {
      var wrap = el('div');
      var pre = el('pre', 'curl', curl);
      var btn = el('button', 'copy', 'copy as curl');
      btn.addEventListener('click', function () { copyText(curl, pre, btn); });
      wrap.appendChild(btn);
      wrap.appendChild(el('span', null, '  (secrets stay masked as ****)'));
      wrap.appendChild(pre);
      section(box, 'Copy as curl', wrap);
    }
    render();
  }

  function copyText(text, pre, btn) {
    function done(ok) { btn.textContent = ok ? 'copied' : 'select and copy below'; }
    function fallback() {
      var range = document.createRange();
      range.selectNodeContents(pre);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      done(ok);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }

  function hideDetail() {
    selected = null;
    byId('detail').className = '';
    render();
  }
  document.addEventListener('keydown', function (ev) { if (ev.key === 'Escape') hideDetail(); });

  // ---- notices about the report itself ----------------------------------------------------
  (function () {
    var parts = [];
    if (meta.left_out > 0) {
      parts.push(meta.left_out + ' more exchange(s) were not embedded: this report holds at most ' +
        meta.max_exchanges + ' exchanges and ' + bytes(meta.max_bytes) + ' of data (use --format json for all of them).');
    }
    if (unreadable > 0) parts.push(unreadable + ' embedded line(s) could not be read.');
    (meta.notices || []).forEach(function (n) { parts.push('Notice: ' + n + '.'); });
    if (lambdaMode && marks.length) parts.push('Lambda: exchanges grouped by invocation, as the extension exported them (its journal: ' + marks.length + ' invocation(s)).');
    if (lambdaMode && runtimeCalls) parts.push('Lambda: exchanges grouped by invocation; the runtime\'s ' + runtimeCalls + ' Runtime API call(s) mark the invocations and are not listed.');
    byId('notice').textContent = parts.join(' ');
  })();

  // ---- filter box -------------------------------------------------------------------------------
  var filterBox = byId('filter');
  var pending = 0;
  function applyFilter() {
    pending = 0;
    var test = compileFilter(filterBox.value);
    shown = all.filter(function (x) { return (!lambdaMode || !x._runtime) && test(x); });
    buildRows();
    drawTotals();
    rowsBox.scrollTop = 0;
    render();
  }
  filterBox.addEventListener('input', function () {
    if (pending) window.clearTimeout(pending);
    pending = window.setTimeout(applyFilter, 120);
  });
  filterBox.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') applyFilter(); });

  var generated = byId('generated');
  if (generated && meta.generated_unix_ns) generated.textContent = 'written ' + iso(Number(meta.generated_unix_ns));
  drawAxis();
  applyFilter();
  // For the benchmark (bench/html_load.py): milliseconds from navigation to a drawn page.
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = '1';
})();

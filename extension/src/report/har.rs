//! `--format har`: HAR 1.2 (the format browsers' developer tools import).
//!
//! Why these choices: HAR was made for browsers, which know more than we do about
//! some things and less about others. Where we do not know a value, HAR's own "unknown"
//! is used (`-1` for sizes and for `blocked`, `dns`, and `connect`/`ssl` when not
//! known). `send`, `wait` and `receive` are required: the exchange's phases where the
//! records tell them, a phase not known being 0 and the rest of the exchange's time
//! `wait`, so that they always add up to first request byte → last response byte (all
//! non-negative, as HAR viewers require). `ssl` is included in `connect`, as HAR
//! says; when the TCP connect is not known, `connect` is the TLS time alone. A known
//! set-up moves `startedDateTime` back by it and adds it to `time`. Exchanges without an HTTP request (opaque TLS, h2c) appear as
//! `CONNECT` entries to the origin with a `comment`, so that they are not lost.
//! tapline's own facts go in `_`-prefixed fields, which HAR allows.

use std::io::{self, Write};

use base64::Engine;
use serde_json::{json, Value};

use crate::exchange::{Body, Exchange};
use crate::report::json::{body_text, ms};

/// Writes one HAR document: the text `serde_json::to_writer_pretty` makes of
/// [`to_value`] and a newline, each entry written by [`write_entry`] (the test
/// `document_is_the_pretty_value_text` holds the two to the same bytes).
pub(crate) fn write(exchanges: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    // DOCUMENT_HEAD up to the entries' `[`, which an empty list closes on its line.
    let head = DOCUMENT_HEAD.trim_end_matches('\n');
    if exchanges.is_empty() {
        out.write_all(head.as_bytes())?;
        return out.write_all(b"]\n  }\n}\n");
    }
    out.write_all(DOCUMENT_HEAD.as_bytes())?;
    let mut buf = Vec::new();
    for (i, x) in exchanges.iter().enumerate() {
        buf.clear();
        if i > 0 {
            buf.extend_from_slice(b",\n");
        }
        // An entry of `log.entries` is three levels deep.
        buf.extend_from_slice(b"      ");
        write_entry(x, 3, &mut buf)?;
        out.write_all(&buf)?;
    }
    out.write_all(DOCUMENT_TAIL.as_bytes())
}

/// What a streamed HAR document starts with, up to its first entry (the same fields as
/// [`to_value`]): entries follow, comma-separated, then [`DOCUMENT_TAIL`].
pub(crate) const DOCUMENT_HEAD: &str = concat!(
    "{\n  \"log\": {\n    \"version\": \"1.2\",\n    \"creator\": {\n",
    "      \"name\": \"tapline\",\n      \"version\": \"",
    env!("CARGO_PKG_VERSION"),
    "\"\n    },\n    \"entries\": [\n"
);

/// What closes a streamed HAR document.
pub(crate) const DOCUMENT_TAIL: &str = "\n    ]\n  }\n}\n";

/// The `log.comment` that says the blind spots, one `tapline notice: ...` line each.
pub(crate) fn notices_comment(notices: &[crate::notice::Notice]) -> Option<String> {
    (!notices.is_empty()).then(|| {
        notices
            .iter()
            .map(|n| format!("tapline notice: {}", n.message()))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// The HAR document for these exchanges: the definition [`write`] is held to (by
/// tests; the reports write the same bytes directly).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn to_value(exchanges: &[Exchange]) -> Value {
    json!({
        "log": {
            "version": "1.2",
            "creator": { "name": "tapline", "version": env!("CARGO_PKG_VERSION") },
            "entries": exchanges.iter().map(entry).collect::<Vec<_>>(),
        }
    })
}

/// The numbers of HAR `timings` (ms; `None` is HAR's `-1`), and the set-up time
/// (connect and TLS, ns) that came before the exchange's first request byte.
struct HarTimings {
    connect: Option<f64>,
    ssl: Option<f64>,
    send: f64,
    wait: f64,
    receive: f64,
    setup_ns: u64,
}

impl HarTimings {
    fn of(x: &Exchange) -> HarTimings {
        let t = &x.timings;
        let send = t.send_ns.unwrap_or(0);
        let receive = t.receive_ns.unwrap_or(0);
        let wait = t
            .wait_ns
            .unwrap_or_else(|| x.duration_ns.saturating_sub(send + receive));
        let setup_ns = t.setup_ns();
        HarTimings {
            connect: (t.connect_ns.is_some() || t.tls_ns.is_some()).then(|| ms(setup_ns)),
            ssl: t.tls_ns.map(ms),
            send: ms(send),
            wait: ms(wait),
            receive: ms(receive),
            setup_ns,
        }
    }
}

/// HAR `timings` for an exchange, and the set-up time (connect and TLS) that came
/// before its first request byte.
fn har_timings(x: &Exchange) -> (Value, u64) {
    let t = HarTimings::of(x);
    let known = |v: Option<f64>| v.map_or(Value::from(-1), Value::from);
    (
        json!({
            "blocked": -1,
            "dns": -1,
            "connect": known(t.connect),
            "ssl": known(t.ssl),
            "send": t.send,
            "wait": t.wait,
            "receive": t.receive,
        }),
        t.setup_ns,
    )
}

/// One HAR entry: the definition [`write_entry`] is held to.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn entry(x: &Exchange) -> Value {
    let (timings, setup_ns) = har_timings(x);
    let time_ms = ms(x.duration_ns + setup_ns);
    let url = x.url_or_origin().unwrap_or_default();
    let http_version = http_version(x);
    let method = x.method.clone().unwrap_or_else(|| "CONNECT".to_owned());
    let mut request = json!({
        "method": method,
        "url": url,
        "httpVersion": http_version,
        "headers": name_values(&x.request_headers),
        "queryString": query_string(x.query.as_deref()),
        "cookies": request_cookies(x),
        "headersSize": -1,
        "bodySize": if x.method.is_some() { x.request_body_size() as i64 } else { -1 },
    });
    if let Some(body) = &x.request_body {
        let (text, encoding) = body_text(Some(body));
        let mut post = json!({
            "mimeType": x.request_header("content-type").unwrap_or(""),
            "text": text,
        });
        if !encoding.is_null() {
            post["_encoding"] = encoding;
        }
        if let Some(coding) = body.decoded {
            // `text` is the body decoded from this content coding (and masked so).
            post["_decoded"] = Value::from(coding);
        }
        request["postData"] = post;
    }
    let status = x.status.unwrap_or(0);
    let response = json!({
        "status": status,
        "statusText": status_text(status),
        "httpVersion": http_version,
        "headers": name_values(&x.response_headers),
        "cookies": response_cookies(x),
        "content": content(x, x.response_body.as_ref()),
        "redirectURL": x.response_header("location").unwrap_or(""),
        "headersSize": -1,
        "bodySize": if x.status.is_some() { x.response_body_size() as i64 } else { -1 },
    });
    let mut e = json!({
        "startedDateTime": iso8601(x.start_unix_ns.saturating_sub(setup_ns)),
        "time": time_ms,
        "request": request,
        "response": response,
        "cache": {},
        "timings": timings,
        "connection": x.conn_id.to_string(),
        "_pid": x.pid,
        "_tls": x.tls.as_str(),
        "_sni": x.sni,
        "_error": x.error,
        "_truncated": x.truncated,
        // An AWS API call, as in the JSON report's `aws` object (null otherwise).
        "_aws": x.aws.as_ref().map(super::json::aws_value),
    });
    if !x.response_trailers.is_empty() {
        e["response"]["_trailers"] = Value::Array(name_values(&x.response_trailers));
    }
    if x.pushed {
        e["_pushed"] = Value::from(true);
    }
    if let Some(peer) = x.peer {
        e["serverIPAddress"] = Value::from(peer.ip().to_string());
    }
    if x.method.is_none() {
        e["comment"] = Value::from(no_http_comment(x));
    }
    e
}

fn http_version(x: &Exchange) -> &'static str {
    match x.http_version.as_deref() {
        Some("2") => "HTTP/2.0",
        Some("1.0") => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// The `comment` of an entry without an HTTP request.
fn no_http_comment(x: &Exchange) -> String {
    format!(
        "{}: no readable HTTP; only the server name, byte counts and timing are known",
        if x.tls == crate::exchange::TlsKind::Opaque {
            "encrypted (opaque TLS)"
        } else {
            "HTTP/2 (h2c)"
        }
    )
}

/// Appends one HAR entry: the text `serde_json::to_writer_pretty` makes of [`entry`],
/// written field by field, its lines after the first `level` indents deeper (0 for an
/// entry on its own, 3 for one inside `log.entries`).
///
/// Why not `entry`: the live report writes every exchange of a busy program, and
/// building the pretty object first (a map entry, a `String` key and a `Value` per
/// field) cost three times what the JSON lines do, enough for `tapline run --format
/// har` to fall behind the program. The test `entry_text_is_the_pretty_value_text`
/// holds the two to the same bytes over varied exchanges; [`entry`] stays the
/// definition.
pub(crate) fn write_entry(x: &Exchange, level: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let t = HarTimings::of(x);
    let http_version = http_version(x);
    let mut w = Pretty::new(out, level);
    w.open(b'{');
    w.key("startedDateTime");
    w.out.push(b'"');
    write_iso8601(w.out, x.start_unix_ns.saturating_sub(t.setup_ns));
    w.out.push(b'"');
    w.key("time");
    w.float(ms(x.duration_ns + t.setup_ns))?;

    w.key("request");
    w.open(b'{');
    w.key("method");
    w.string(x.method.as_deref().unwrap_or("CONNECT"))?;
    w.key("url");
    w.string(&x.url_or_origin().unwrap_or_default())?;
    w.key("httpVersion");
    w.string(http_version)?;
    w.key("headers");
    w.name_values(
        x.request_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    )?;
    w.key("queryString");
    w.name_values(query_pairs(x.query.as_deref()))?;
    w.key("cookies");
    w.name_values(request_cookie_pairs(x))?;
    w.key("headersSize");
    w.raw(b"-1");
    w.key("bodySize");
    if x.method.is_some() {
        w.integer(x.request_body_size() as i64);
    } else {
        w.raw(b"-1");
    }
    if let Some(body) = &x.request_body {
        let (text, encoding) = body_str(body);
        w.key("postData");
        w.open(b'{');
        w.key("mimeType");
        w.string(x.request_header("content-type").unwrap_or(""))?;
        w.key("text");
        w.string(&text)?;
        if let Some(encoding) = encoding {
            w.key("_encoding");
            w.string(encoding)?;
        }
        if let Some(coding) = body.decoded {
            w.key("_decoded");
            w.string(coding)?;
        }
        w.close(b'}');
    }
    w.close(b'}');

    let status = x.status.unwrap_or(0);
    w.key("response");
    w.open(b'{');
    w.key("status");
    w.unsigned(status);
    w.key("statusText");
    w.string(status_text(status))?;
    w.key("httpVersion");
    w.string(http_version)?;
    w.key("headers");
    w.name_values(
        x.response_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    )?;
    w.key("cookies");
    w.name_values(response_cookie_pairs(x))?;
    w.key("content");
    w.open(b'{');
    w.key("size");
    w.unsigned(x.response_body_size());
    w.key("mimeType");
    w.string(x.response_header("content-type").unwrap_or(""))?;
    if let Some(body) = &x.response_body {
        let (text, encoding) = body_str(body);
        w.key("text");
        w.string(&text)?;
        if let Some(encoding) = encoding {
            w.key("encoding");
            w.string(encoding)?;
        }
        if let Some(coding) = body.decoded {
            w.key("_decoded");
            w.string(coding)?;
        }
    }
    w.close(b'}');
    w.key("redirectURL");
    w.string(x.response_header("location").unwrap_or(""))?;
    w.key("headersSize");
    w.raw(b"-1");
    w.key("bodySize");
    if x.status.is_some() {
        w.integer(x.response_body_size() as i64);
    } else {
        w.raw(b"-1");
    }
    if !x.response_trailers.is_empty() {
        w.key("_trailers");
        w.name_values(
            x.response_trailers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        )?;
    }
    w.close(b'}');

    w.key("cache");
    w.open(b'{');
    w.close(b'}');
    w.key("timings");
    w.open(b'{');
    w.key("blocked");
    w.raw(b"-1");
    w.key("dns");
    w.raw(b"-1");
    for (name, v) in [("connect", t.connect), ("ssl", t.ssl)] {
        w.key(name);
        match v {
            Some(v) => w.float(v)?,
            None => w.raw(b"-1"),
        }
    }
    w.key("send");
    w.float(t.send)?;
    w.key("wait");
    w.float(t.wait)?;
    w.key("receive");
    w.float(t.receive)?;
    w.close(b'}');

    w.key("connection");
    // Digits need no escape.
    w.out.push(b'"');
    w.unsigned(x.conn_id);
    w.out.push(b'"');
    w.key("_pid");
    w.unsigned(x.pid);
    w.key("_tls");
    w.string(x.tls.as_str())?;
    w.key("_sni");
    w.opt_string(x.sni.as_deref())?;
    w.key("_error");
    w.opt_string(x.error.as_deref())?;
    w.key("_truncated");
    w.raw(if x.truncated { b"true" } else { b"false" });
    w.key("_aws");
    match &x.aws {
        // Rare, and nested: written from its object.
        Some(a) => w.value(&super::json::aws_value(a))?,
        None => w.raw(b"null"),
    }
    if x.pushed {
        w.key("_pushed");
        w.raw(b"true");
    }
    if let Some(peer) = x.peer {
        w.key("serverIPAddress");
        // An address's text (digits, `.`, `:`, `%`, hex) needs no JSON escape.
        w.out.push(b'"');
        write!(w.out, "{}", peer.ip())?;
        w.out.push(b'"');
    }
    if x.method.is_none() {
        w.key("comment");
        w.string(&no_http_comment(x))?;
    }
    w.close(b'}');
    Ok(())
}

/// A body as HAR's `text` has it: UTF-8 text, or base64 with its `encoding`.
fn body_str(body: &Body) -> (std::borrow::Cow<'_, str>, Option<&'static str>) {
    match std::str::from_utf8(&body.bytes) {
        Ok(text) => (text.into(), None),
        Err(_) => (
            base64::engine::general_purpose::STANDARD
                .encode(&body.bytes)
                .into(),
            Some("base64"),
        ),
    }
}

/// JSON as `serde_json`'s `PrettyFormatter` lays it out (two spaces an indent, `": "`
/// after a key, `[]` and `{}` when empty), written piece by piece into a buffer.
/// Scalars are written by `serde_json` itself, so that escapes and numbers are its own.
struct Pretty<'a> {
    out: &'a mut Vec<u8>,
    /// Indents of the lines inside the innermost open array or object.
    level: usize,
    /// Nothing was written yet in the innermost open array or object.
    first: bool,
}

impl<'a> Pretty<'a> {
    fn new(out: &'a mut Vec<u8>, level: usize) -> Self {
        Pretty {
            out,
            level,
            first: true,
        }
    }

    fn open(&mut self, bracket: u8) {
        self.out.push(bracket);
        self.level += 1;
        self.first = true;
    }

    fn close(&mut self, bracket: u8) {
        self.level -= 1;
        if !self.first {
            self.newline();
        }
        self.out.push(bracket);
        self.first = false;
    }

    fn newline(&mut self) {
        self.out.push(b'\n');
        for _ in 0..self.level {
            self.out.extend_from_slice(b"  ");
        }
    }

    /// Starts the next element of an array.
    fn element(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.newline();
    }

    /// Starts the next member of an object: `key` needs no escape (ours are ASCII
    /// names).
    fn key(&mut self, key: &str) {
        self.element();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\": ");
    }

    fn raw(&mut self, text: &[u8]) {
        self.out.extend_from_slice(text);
    }

    fn string(&mut self, s: &str) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, s)?;
        Ok(())
    }

    fn opt_string(&mut self, s: Option<&str>) -> io::Result<()> {
        match s {
            Some(s) => self.string(s),
            None => {
                self.raw(b"null");
                Ok(())
            }
        }
    }

    /// An integer in decimal, as `serde_json` writes one.
    fn unsigned(&mut self, n: impl Into<u64>) {
        let mut n = n.into();
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&digits[at..]);
    }

    fn integer(&mut self, n: i64) {
        if n < 0 {
            self.out.push(b'-');
        }
        self.unsigned(n.unsigned_abs());
    }

    /// A float as a `Value` made from it prints it (ms are finite).
    fn float(&mut self, v: f64) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, &Value::from(v))?;
        Ok(())
    }

    /// `[{"name": ..., "value": ...}, ...]`.
    fn name_values<'s>(
        &mut self,
        pairs: impl Iterator<Item = (&'s str, &'s str)>,
    ) -> io::Result<()> {
        self.open(b'[');
        for (n, v) in pairs {
            self.element();
            self.open(b'{');
            self.key("name");
            self.string(n)?;
            self.key("value");
            self.string(v)?;
            self.close(b'}');
        }
        self.close(b']');
        Ok(())
    }

    /// Any value (its object keys escaped as `serde_json` does).
    fn value(&mut self, v: &Value) -> io::Result<()> {
        match v {
            Value::Array(items) => {
                self.open(b'[');
                for item in items {
                    self.element();
                    self.value(item)?;
                }
                self.close(b']');
            }
            Value::Object(members) => {
                self.open(b'{');
                for (k, item) in members {
                    self.element();
                    self.string(k)?;
                    self.raw(b": ");
                    self.value(item)?;
                }
                self.close(b'}');
            }
            scalar => serde_json::to_writer(&mut *self.out, scalar)?,
        }
        Ok(())
    }
}

fn content(x: &Exchange, body: Option<&Body>) -> Value {
    let mut c = json!({
        "size": x.response_body_size(),
        "mimeType": x.response_header("content-type").unwrap_or(""),
    });
    if body.is_some() {
        let (text, encoding) = body_text(body);
        c["text"] = text;
        if !encoding.is_null() {
            c["encoding"] = encoding;
        }
        if let Some(coding) = body.and_then(|b| b.decoded) {
            c["_decoded"] = Value::from(coding);
        }
    }
    c
}

fn name_values(headers: &[(String, String)]) -> Vec<Value> {
    headers
        .iter()
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect()
}

fn query_string(query: Option<&str>) -> Vec<Value> {
    query_pairs(query)
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect()
}

/// `queryString`'s pairs: the query split at `&`, each at its first `=`.
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn request_cookies(x: &Exchange) -> Vec<Value> {
    request_cookie_pairs(x)
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect()
}

/// The request's cookies: every `Cookie` header split at `;`, each at its first `=`.
fn request_cookie_pairs(x: &Exchange) -> impl Iterator<Item = (&str, &str)> {
    x.request_headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
}

fn response_cookies(x: &Exchange) -> Vec<Value> {
    response_cookie_pairs(x)
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect()
}

/// The response's cookies: the name and value of every `Set-Cookie` header.
fn response_cookie_pairs(x: &Exchange) -> impl Iterator<Item = (&str, &str)> {
    x.response_headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next()?.trim().split_once('='))
}

/// The reason phrases of RFC 9110 for common codes (we do not keep the one sent).
fn status_text(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// ns since the Unix epoch → `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn iso8601(unix_ns: u64) -> String {
    let mut out = Vec::with_capacity(24);
    write_iso8601(&mut out, unix_ns);
    // Digits, `-`, `:`, `.`, `T` and `Z` only.
    String::from_utf8(out).unwrap_or_default()
}

/// [`iso8601`] appended to `out`.
fn write_iso8601(out: &mut Vec<u8>, unix_ns: u64) {
    let secs = unix_ns / 1_000_000_000;
    let ms = unix_ns / 1_000_000 % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    // `{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z`, digit by digit (a
    // year of u64 ns is below 10,000).
    let digits = |out: &mut Vec<u8>, v: u64, width: u32| {
        for i in (0..width).rev() {
            out.push(b'0' + (v / 10u64.pow(i) % 10) as u8);
        }
    };
    digits(out, y as u64, 4);
    out.push(b'-');
    digits(out, m.into(), 2);
    out.push(b'-');
    digits(out, d.into(), 2);
    out.push(b'T');
    digits(out, rem / 3600, 2);
    out.push(b':');
    digits(out, rem / 60 % 60, 2);
    out.push(b':');
    digits(out, rem % 60, 2);
    out.push(b'.');
    digits(out, ms, 3);
    out.push(b'Z');
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{sample, AwsCall, Service, Timings, TlsKind};

    /// The JSON report's varied exchanges, and more that differ in what HAR makes of
    /// them: cookies both ways, query strings, redirects, content types, reason
    /// phrases, HTTP versions, h2c, bodies of every kind on both sides, each timing
    /// phase known or not, set-up before the epoch, strings every escape of JSON.
    fn varied() -> Vec<Exchange> {
        let mut out = crate::report::json::tests::varied();
        let odd = "q\"uo\\te \u{0}\u{1f}\u{7f} é 日本 \u{2028} </script> \r\n\t";
        let mut x = sample();
        x.request_headers = vec![
            ("Cookie".into(), "a=1; b=2;c; =x;  d = e ".into()),
            ("cookie".into(), format!("z={odd}")),
            ("Content-Type".into(), "text/plain; charset=utf-8".into()),
            (odd.into(), odd.into()),
        ];
        x.response_headers = vec![
            ("Set-Cookie".into(), "sid=abc; Path=/; HttpOnly".into()),
            ("set-cookie".into(), "bad".into()),
            ("SET-COOKIE".into(), format!("k={odd}; Secure")),
            ("Location".into(), format!("/next?{odd}")),
            ("Content-Type".into(), "application/octet-stream".into()),
        ];
        x.query = Some(format!("a=1&b&&c=x=y&{odd}=1&=v&"));
        x.path = Some("/é/%20/\u{2028}".into());
        x.request_body = Some(Body {
            bytes: odd.as_bytes().to_vec(),
            size: 1 << 20,
            truncated: true,
            decoded: Some("br"),
        });
        x.response_body = Some(Body {
            bytes: b"\xc3\x28 not utf-8".to_vec(),
            size: 12,
            truncated: false,
            decoded: None,
        });
        x.error = Some(odd.into());
        x.sni = None;
        x.status = Some(302);
        out.push(x.clone());
        for (status, version) in [
            (Some(404), Some("1.0")),
            (Some(999), None),
            (Some(101), Some("2")),
            (None, Some("1.1")),
            (Some(0), Some("3")),
        ] {
            x.status = status;
            x.http_version = version.map(Into::into);
            out.push(x.clone());
        }
        // Every combination of known phases, on a long and a zero duration.
        for bits in 0..32u32 {
            let mut t = sample();
            let phase = |i: u32, ns: u64| (bits & 1 << i != 0).then_some(ns);
            t.timings = Timings {
                connect_ns: phase(0, 1_234_567),
                tls_ns: phase(1, 7),
                send_ns: phase(2, 1_000),
                wait_ns: phase(3, 123_456_789_123),
                receive_ns: phase(4, 999_999),
            };
            t.duration_ns = if bits % 3 == 0 { 0 } else { u64::MAX / 4 };
            t.start_unix_ns = if bits % 5 == 0 {
                1_000
            } else {
                t.start_unix_ns
            };
            out.push(t);
        }
        // h2c: no HTTP request, not TLS.
        let mut h2c = sample();
        h2c.method = None;
        h2c.path = None;
        h2c.tls = TlsKind::None;
        h2c.scheme = "http";
        h2c.host = Some("::1".into());
        h2c.port = Some(8080);
        h2c.request_body = Some(Body::default());
        out.push(h2c.clone());
        h2c.host = None;
        out.push(h2c);
        // Bodies: empty text both ways, binary request, absent response with a type.
        let mut b = sample();
        b.request_body = Some(Body {
            bytes: vec![0, 159, 146, 150],
            size: 4,
            truncated: false,
            decoded: Some("gzip"),
        });
        b.response_body = Some(Body::default());
        out.push(b.clone());
        // Sizes past i64 (HAR's `bodySize` is signed).
        b.response_body = Some(Body {
            size: u64::MAX,
            ..Body::default()
        });
        if let Some(r) = b.request_body.as_mut() {
            r.size = 1 << 63;
        }
        out.push(b.clone());
        b.request_body = Some(Body::default());
        b.response_body = None;
        b.response_headers = vec![("content-type".into(), "image/png".into())];
        b.response_trailers = vec![("x-checksum".into(), odd.into()), ("".into(), "".into())];
        b.pushed = true;
        b.peer = Some("[2001:db8::1]:443".parse().unwrap());
        out.push(b.clone());
        // An AWS call with nothing but its service and operation.
        b.aws = Some(AwsCall {
            service: Service::Sqs,
            operation: odd.into(),
            region: None,
            resource: vec![],
            request_id: None,
            extended_request_id: Some("e".into()),
            message_ids: vec![],
        });
        out.push(b);
        out
    }

    #[test]
    fn entry_text_is_the_pretty_value_text() {
        for (i, x) in varied().iter().enumerate() {
            let expected = serde_json::to_vec_pretty(&entry(x)).unwrap();
            let mut text = Vec::new();
            write_entry(x, 0, &mut text).unwrap();
            assert_eq!(
                String::from_utf8(text).unwrap(),
                String::from_utf8(expected).unwrap(),
                "exchange {i}"
            );
        }
    }

    #[test]
    fn document_is_the_pretty_value_text() {
        let all = varied();
        for exchanges in [&all[..0], &all[..1], &all[..]] {
            let mut expected = serde_json::to_vec_pretty(&to_value(exchanges)).unwrap();
            expected.push(b'\n');
            let mut text = Vec::new();
            write(exchanges, &mut text).unwrap();
            assert_eq!(
                String::from_utf8(text).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{} entries",
                exchanges.len()
            );
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z (a leap day).
        assert_eq!(
            iso8601(1_709_210_096_789_000_000),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(iso8601(u64::MAX), "2554-07-21T23:34:33.709Z");
    }

    #[test]
    fn timings_from_phases_add_up_and_move_the_start_back() {
        let mut x = crate::exchange::sample(); // 5 ms
        x.timings.connect_ns = Some(2_000_000);
        x.timings.tls_ns = Some(3_000_000);
        x.timings.send_ns = Some(1_000_000);
        x.timings.receive_ns = Some(500_000);
        let e = entry(&x);
        let t = &e["timings"];
        assert_eq!(
            (t["dns"].clone(), t["blocked"].clone()),
            (json!(-1), json!(-1))
        );
        // HAR counts ssl inside connect; wait is the rest of the exchange.
        assert_eq!(
            (t["connect"].as_f64(), t["ssl"].as_f64()),
            (Some(5.0), Some(3.0))
        );
        assert_eq!(
            (
                t["send"].as_f64(),
                t["wait"].as_f64(),
                t["receive"].as_f64()
            ),
            (Some(1.0), Some(3.5), Some(0.5))
        );
        assert_eq!(e["time"].as_f64(), Some(10.0));
        assert_eq!(e["startedDateTime"], iso8601(x.start_unix_ns - 5_000_000));
        // Nothing known: all of it is wait, connect and ssl -1.
        x.timings = Default::default();
        let t = entry(&x)["timings"].clone();
        assert_eq!(
            (t["connect"].clone(), t["ssl"].clone()),
            (json!(-1), json!(-1))
        );
        assert_eq!(t["wait"].as_f64(), Some(5.0));
    }

    #[test]
    fn query_and_cookies() {
        assert_eq!(
            query_string(Some("a=1&b&&c=x=y")),
            vec![
                json!({"name": "a", "value": "1"}),
                json!({"name": "b", "value": ""}),
                json!({"name": "c", "value": "x=y"}),
            ]
        );
    }
}

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

use serde_json::{json, Value};

use crate::exchange::{Body, Exchange};
use crate::report::json::{body_text, ms};

/// Writes one HAR document.
pub(crate) fn write(exchanges: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(exchanges))?;
    out.write_all(b"\n")
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

/// The HAR document for these exchanges.
pub(crate) fn to_value(exchanges: &[Exchange]) -> Value {
    json!({
        "log": {
            "version": "1.2",
            "creator": { "name": "tapline", "version": env!("CARGO_PKG_VERSION") },
            "entries": exchanges.iter().map(entry).collect::<Vec<_>>(),
        }
    })
}

/// HAR `timings` for an exchange, and the set-up time (connect and TLS) that came
/// before its first request byte.
fn har_timings(x: &Exchange) -> (Value, u64) {
    let t = &x.timings;
    let send = t.send_ns.unwrap_or(0);
    let receive = t.receive_ns.unwrap_or(0);
    let wait = t
        .wait_ns
        .unwrap_or_else(|| x.duration_ns.saturating_sub(send + receive));
    let setup = t.setup_ns();
    let known = |v: Option<u64>| v.map_or(Value::from(-1), |ns| Value::from(ms(ns)));
    let connect = if t.connect_ns.is_some() || t.tls_ns.is_some() {
        Value::from(ms(setup))
    } else {
        Value::from(-1)
    };
    (
        json!({
            "blocked": -1,
            "dns": -1,
            "connect": connect,
            "ssl": known(t.tls_ns),
            "send": ms(send),
            "wait": ms(wait),
            "receive": ms(receive),
        }),
        setup,
    )
}

/// One HAR entry.
pub(crate) fn entry(x: &Exchange) -> Value {
    let (timings, setup_ns) = har_timings(x);
    let time_ms = ms(x.duration_ns + setup_ns);
    let url = x.url_or_origin().unwrap_or_default();
    let http_version = match x.http_version.as_deref() {
        Some("2") => "HTTP/2.0",
        Some("1.0") => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
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
        e["comment"] = Value::from(format!(
            "{}: no readable HTTP; only the server name, byte counts and timing are known",
            if x.tls == crate::exchange::TlsKind::Opaque {
                "encrypted (opaque TLS)"
            } else {
                "HTTP/2 (h2c)"
            }
        ));
    }
    e
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
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            json!({ "name": n, "value": v })
        })
        .collect()
}

fn request_cookies(x: &Exchange) -> Vec<Value> {
    x.request_headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect()
}

fn response_cookies(x: &Exchange) -> Vec<Value> {
    x.response_headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next()?.trim().split_once('='))
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect()
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
    let secs = unix_ns / 1_000_000_000;
    let ms = unix_ns / 1_000_000 % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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

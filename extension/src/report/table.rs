//! `--format table`: one line per exchange, for a person at a terminal.
//!
//! Columns: time since the first exchange, pid, method, URL, status, request →
//! response body sizes, duration, how TLS was seen, and the error if any. Everything
//! that came off the wire is escaped, so that a hostile server cannot move the cursor
//! or change colours in the user's terminal.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::exchange::{Exchange, TlsKind};

/// Writes a header line and one line per exchange (or a line saying there were none).
pub(crate) fn write(exchanges: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    if exchanges.is_empty() {
        return writeln!(out, "tapline: no HTTP exchanges captured");
    }
    let t0 = exchanges.iter().map(|x| x.start_unix_ns).min().unwrap_or(0);
    let rows: Vec<[String; 8]> = exchanges.iter().map(|x| row(x, t0)).collect();
    let url_width = rows
        .iter()
        .map(|r| r[3].chars().count())
        .max()
        .unwrap_or(3)
        .clamp(3, 80);
    let pid_width = rows.iter().map(|r| r[1].len()).max().unwrap_or(3).max(3);
    writeln!(
        out,
        "{:>9}  {:>pw$}  {:<7}  {:<uw$}  {:>6}  {:>21}  {:>9}  TLS",
        "TIME",
        "PID",
        "METHOD",
        "URL",
        "STATUS",
        "REQ → RESP BYTES",
        "DURATION",
        pw = pid_width,
        uw = url_width
    )?;
    for r in rows {
        let line = format!(
            "{:>9}  {:>pw$}  {:<7}  {:<uw$}  {:>6}  {:>21}  {:>9}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            pw = pid_width,
            uw = url_width
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn row(x: &Exchange, t0: u64) -> [String; 8] {
    let offset = x.start_unix_ns.saturating_sub(t0);
    let method = match (&x.method, x.tls) {
        // An AWS API call is named by its operation (`DynamoDB.PutItem`), the HTTP
        // method being always POST or a REST verb that says less.
        (Some(_), _) if x.aws.is_some() => x
            .aws
            .as_ref()
            .map_or_else(String::new, |a| escape(&a.name())),
        // A gRPC call by `pkg.Service/Method`.
        (Some(_), _) if x.grpc.is_some() => x
            .grpc
            .as_ref()
            .map_or_else(String::new, |g| escape(&g.name())),
        (Some(m), _) => escape(m),
        (None, TlsKind::Opaque) => "TLS".to_owned(),
        (None, _) => "-".to_owned(),
    };
    let url = x
        .url_or_origin()
        .map_or_else(|| "-".to_owned(), |u| escape(&u));
    let status = match x.grpc.as_ref().and_then(|g| g.status_name()) {
        Some(code) => code.to_owned(),
        None => x.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
    };
    let sizes = format!(
        "{} → {}",
        human_bytes(x.request_body_size()),
        human_bytes(x.response_body_size())
    );
    let mut tls = x.tls.as_str().to_owned();
    if let Some(sni) = x.sni.as_deref().filter(|_| x.tls == TlsKind::Opaque) {
        let _ = write!(tls, " sni={}", escape(sni));
    }
    if x.http_version.as_deref() == Some("2") && x.method.is_some() {
        tls.push_str(" h2");
    }
    if x.pushed {
        tls.push_str(" [pushed]");
    }
    if x.truncated {
        tls.push_str(" [truncated]");
    }
    if let Some(e) = &x.error {
        let _ = write!(tls, "  error: {}", escape(e));
    }
    [
        format!(
            "+{}.{:03}s",
            offset / 1_000_000_000,
            offset / 1_000_000 % 1000
        ),
        x.pid.to_string(),
        method,
        url,
        status,
        sizes,
        human_duration(x.duration_ns),
        tls,
    ]
}

/// Replaces control characters with `\xNN` escapes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn human_duration(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.0} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_duration(1_500), "2 µs");
        assert_eq!(human_duration(12_340_000), "12.3 ms");
        assert_eq!(human_duration(2_500_000_000), "2.50 s");
    }

    #[test]
    fn grpc_calls_show_their_method_and_status_code() {
        let mut ex = crate::exchange::sample();
        ex.path = Some("/helloworld.Greeter/SayHello".into());
        ex.grpc = Some(crate::exchange::GrpcCall {
            service: "helloworld.Greeter".into(),
            method: "SayHello".into(),
            status: Some(5),
            message: None,
            request_messages: 1,
            response_messages: 0,
        });
        let r = row(&ex, ex.start_unix_ns);
        assert_eq!(
            (r[2].as_str(), r[4].as_str()),
            ("helloworld.Greeter/SayHello", "NOT_FOUND")
        );
        ex.grpc.as_mut().unwrap().status = None;
        assert_eq!(row(&ex, 0)[4], "200");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[31mb\n"), "a\\x1b[31mb\\x0a");
    }
}

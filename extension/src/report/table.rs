//! `--format table`: one line per exchange, for a person at a terminal.
//!
//! Columns: time since the start (of the run, or the first exchange), pid, method, URL,
//! status, request → response body sizes, duration, how TLS was seen, and the error if
//! any. Everything that came off the wire is escaped, so that a hostile server cannot
//! move the cursor or change colours in the user's terminal.
//!
//! Lines are written as exchanges complete, so column widths are fixed up front rather
//! than measured over all rows: on a terminal ([`TableStyle::terminal`]) the URL column
//! takes what the terminal's width leaves (a longer URL is shortened in the middle, where
//! it says least: scheme, host and the end of the path stay), the line is cut at the
//! width, and status classes and errors are coloured; piped ([`TableStyle::piped`]) the
//! URL is always whole and nothing is coloured, so that grep and scripts see everything.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::exchange::{Exchange, TlsKind};

use super::sink::{ReportSink, RunSummary};

/// Writes a header line and one line per exchange (or a line saying there were none).
pub(crate) fn write(exchanges: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::new();
    {
        let mut sink = TableSink::new(Box::new(&mut buf), TableStyle::piped(), None);
        for x in exchanges {
            sink.push(x)?;
        }
        sink.finish(&RunSummary::default())?;
    }
    out.write_all(&buf)
}

/// How the table is laid out for where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TableStyle {
    /// The terminal's width in columns; `None` when not a terminal (no cutting).
    pub width: Option<usize>,
    /// ANSI colours for status classes and errors.
    pub color: bool,
}

impl TableStyle {
    /// Not a terminal: full URLs, no colours.
    pub(crate) fn piped() -> Self {
        TableStyle {
            width: None,
            color: false,
        }
    }

    /// A terminal `width` columns wide.
    pub(crate) fn terminal(width: usize, color: bool) -> Self {
        TableStyle {
            width: Some(width),
            color,
        }
    }

    /// The URL column's width: on a terminal what its width leaves after the other
    /// columns and some room for the TLS column, but no more than two thirds of what
    /// the other columns leave (the rest is for the TLS column and errors); a fixed
    /// minimum (widened by longer URLs) when piped.
    fn url_width(&self) -> usize {
        match self.width {
            Some(w) => {
                let free = w.saturating_sub(FIXED_WIDTH);
                free.saturating_sub(TAIL_ROOM)
                    .min(free * 2 / 3)
                    .max(MIN_URL)
            }
            None => PIPED_URL,
        }
    }
}

/// Widths of the columns other than the URL, the two-space gaps included.
const FIXED_WIDTH: usize = 9 + 2 + PID_WIDTH + 2 + 7 + 2 + 2 + 6 + 2 + SIZES_WIDTH + 2 + 9 + 2;
const SIZES_WIDTH: usize = 17;
const PID_WIDTH: usize = 7;
/// Room kept for the TLS column on a terminal.
const TAIL_ROOM: usize = 8;
/// A narrow terminal keeps this much of the URL and cuts the end of the line instead.
const MIN_URL: usize = 32;
const PIPED_URL: usize = 40;

/// ANSI SGR codes.
const GREEN: &str = "32";
const CYAN: &str = "36";
const YELLOW: &str = "33";
const RED: &str = "31";
const BOLD: &str = "1";

/// The table, a line at a time.
pub(crate) struct TableSink<'a> {
    out: Box<dyn Write + Send + 'a>,
    style: TableStyle,
    /// Time origin of the TIME column; the first exchange's start when not given.
    t0: Option<u64>,
    header_written: bool,
}

impl<'a> TableSink<'a> {
    pub(crate) fn new(out: Box<dyn Write + Send + 'a>, style: TableStyle, t0: Option<u64>) -> Self {
        TableSink {
            out,
            style,
            t0,
            header_written: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        let cells: [(String, Option<&'static str>); 8] = [
            (format!("{:>9}", "TIME"), None),
            (format!("{:>PID_WIDTH$}", "PID"), None),
            (format!("{:<7}", "METHOD"), None),
            (format!("{:<uw$}", "URL", uw = self.style.url_width()), None),
            (format!("{:>6}", "STATUS"), None),
            (format!("{:>SIZES_WIDTH$}", "REQ → RESP BYTES"), None),
            (format!("{:>9}", "DURATION"), None),
            ("TLS".to_owned(), None),
        ];
        let line = self.render(&cells, Some(BOLD));
        self.out.write_all(line.as_bytes())
    }

    /// One line from its cells (text, colour), two spaces apart, cut to the terminal's
    /// width, trailing blanks removed; `all` colours the whole line.
    fn render(
        &self,
        cells: &[(String, Option<&'static str>)],
        all: Option<&'static str>,
    ) -> String {
        let cells: Vec<&(String, Option<&'static str>)> =
            cells.iter().filter(|(t, _)| !t.is_empty()).collect();
        let on = self.style.color;
        let colour = |c: Option<&'static str>| if on { c } else { None };
        let mut line = String::new();
        if let Some(c) = colour(all) {
            let _ = write!(line, "\x1b[{c}m");
        }
        let mut used = 0usize;
        for (i, (text, c)) in cells.iter().enumerate() {
            let text = if i + 1 == cells.len() {
                text.trim_end()
            } else {
                text.as_str()
            };
            let sep = if i == 0 { "" } else { "  " };
            let n = sep.len() + text.chars().count();
            let room = self
                .style
                .width
                .map_or(usize::MAX, |w| w.saturating_sub(used));
            if n > room && room <= sep.len() + 1 {
                line.push('…');
                break;
            }
            let (text, cut) = if n > room {
                let keep = room.saturating_sub(sep.len() + 1);
                (text.chars().take(keep).collect::<String>(), true)
            } else {
                (text.to_owned(), false)
            };
            line.push_str(sep);
            match colour(*c) {
                Some(c) => {
                    let _ = write!(line, "\x1b[{c}m{text}\x1b[0m");
                }
                None => line.push_str(&text),
            }
            used += n;
            if cut {
                line.push('…');
                break;
            }
        }
        if colour(all).is_some() {
            line.push_str("\x1b[0m");
        }
        line.push('\n');
        line
    }
}

impl ReportSink for TableSink<'_> {
    fn push(&mut self, x: &Exchange) -> io::Result<()> {
        if !self.header_written {
            self.header()?;
            self.header_written = true;
        }
        let t0 = *self.t0.get_or_insert(x.start_unix_ns);
        let r = row(x, t0);
        let uw = self.style.url_width();
        let url = match self.style.width {
            Some(_) => shorten_middle(&r[3], uw),
            None => r[3].clone(),
        };
        let status_colour = self.style.color.then(|| status_colour(x)).flatten();
        let (tls, error) = match r[7].split_once("  error: ") {
            Some((t, e)) => (t.to_owned(), format!("error: {e}")),
            None => (r[7].clone(), String::new()),
        };
        let cells: [(String, Option<&'static str>); 9] = [
            (format!("{:>9}", r[0]), None),
            (format!("{:>PID_WIDTH$}", r[1]), None),
            (format!("{:<7}", r[2]), None),
            (format!("{url:<uw$}"), None),
            (format!("{:>6}", r[4]), status_colour),
            (format!("{:>SIZES_WIDTH$}", r[5]), None),
            (format!("{:>9}", r[6]), None),
            (tls, None),
            (error, Some(RED)),
        ];
        let line = self.render(&cells, None);
        self.out.write_all(line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        if !self.header_written {
            writeln!(self.out, "tapline: no HTTP exchanges captured")?;
        }
        for n in &summary.notices {
            writeln!(self.out, "tapline: notice: {}", n.message())?;
        }
        self.out.flush()
    }
}

/// The colour of an exchange's status: its class, or red for an error.
fn status_colour(x: &Exchange) -> Option<&'static str> {
    if let Some(code) = x.grpc.as_ref().and_then(|g| g.status) {
        return Some(if code == 0 { GREEN } else { RED });
    }
    match x.status {
        Some(200..=299) => Some(GREEN),
        Some(300..=399) => Some(CYAN),
        Some(400..=499) => Some(YELLOW),
        Some(500..=599) => Some(RED),
        _ if x.error.is_some() => Some(RED),
        _ => None,
    }
}

/// `s` in at most `max` characters: its start and end kept, `…` between them.
fn shorten_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max || max < 3 {
        return s.to_owned();
    }
    let keep = max - 1;
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
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

pub(crate) fn human_bytes(n: u64) -> String {
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

    fn lines(style: TableStyle, exchanges: &[Exchange]) -> Vec<String> {
        let mut buf = Vec::new();
        {
            let mut sink = TableSink::new(Box::new(&mut buf), style, None);
            for x in exchanges {
                sink.push(x).unwrap();
            }
            sink.finish(&RunSummary::default()).unwrap();
        }
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn long_url_exchange() -> Exchange {
        let mut x = crate::exchange::sample();
        x.path = Some(format!("/v1/{}/tail", "segment/".repeat(20)));
        x.status = Some(404);
        x.error = Some("connection reset".into());
        x
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                for d in it.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn middle_shortening_keeps_both_ends() {
        assert_eq!(shorten_middle("abcdefghij", 20), "abcdefghij");
        assert_eq!(shorten_middle("abcdefghij", 7), "abc…hij");
        assert_eq!(shorten_middle("abcdefghij", 6), "abc…ij");
        assert_eq!(shorten_middle("abcdefghij", 6).chars().count(), 6);
    }

    #[test]
    fn on_a_terminal_lines_fit_its_width_and_colour_status_and_error() {
        let x = long_url_exchange();
        let url = x.url_or_origin().unwrap();
        for width in [60, 100, 140] {
            let out = lines(TableStyle::terminal(width, true), std::slice::from_ref(&x));
            assert_eq!(out.len(), 2);
            for l in &out {
                assert!(strip_ansi(l).chars().count() <= width, "{width}: {l}");
            }
            let row = strip_ansi(&out[1]);
            assert!(!row.contains(&url) && row.contains('…'), "{row}");
            assert!(row.contains("https://"), "{row}");
        }
        let wide = lines(TableStyle::terminal(300, true), std::slice::from_ref(&x));
        assert!(wide[1].contains("\x1b[33m   404\x1b[0m"), "{}", wide[1]);
        assert!(
            wide[1].contains("\x1b[31merror: connection reset\x1b[0m"),
            "{}",
            wide[1]
        );
        assert!(strip_ansi(&wide[1]).contains("/tail"));
    }

    #[test]
    fn piped_lines_have_whole_urls_and_no_escapes() {
        let x = long_url_exchange();
        let out = lines(TableStyle::piped(), std::slice::from_ref(&x));
        assert!(out[1].contains(&x.url_or_origin().unwrap()), "{}", out[1]);
        assert!(!out.iter().any(|l| l.contains('\x1b') || l.contains('…')));
        assert!(out[1].ends_with("error: connection reset"), "{}", out[1]);
        assert_eq!(
            lines(TableStyle::piped(), &[]),
            ["tapline: no HTTP exchanges captured"]
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[31mb\n"), "a\\x1b[31mb\\x0a");
    }
}

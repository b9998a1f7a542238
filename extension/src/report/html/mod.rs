//! `--format html`: one self-contained page — a waterfall of the exchanges on a shared
//! time axis, grouped by process and connection (by invocation for a Lambda spool),
//! details on click, a filter box and totals.
//!
//! Why it is shaped like this: the file must open from disk with no network (CSS and
//! JS are inline, `page.css` and `page.js` pulled in at build time), and it must be
//! writable as exchanges arrive without keeping them: [`HtmlReport::push`] writes each
//! exchange at once as one JSON line (the `--format json` object, already masked, plus
//! `seq`) inside a `<script type="application/x-ndjson">` element, and the page builds
//! everything from those lines when it loads. A `<` inside the JSON is written `\u003c`,
//! so wire bytes can never close the element or open markup; the script puts wire text
//! into the page only as text, never as markup.
//!
//! What the browser holds is bounded: past [`EmbedLimits`] exchanges are counted, not
//! embedded, and the page says how many were left out.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::exchange::Exchange;
use crate::report::json;
use crate::report::sink::{ReportSink, RunSummary};

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// How much a report embeds before it only counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EmbedLimits {
    /// Exchanges embedded at most.
    pub max_exchanges: u64,
    /// Bytes of embedded JSON at most.
    pub max_bytes: u64,
}

impl Default for EmbedLimits {
    /// 100,000 exchanges or 256 MiB of data: what a browser tab opens comfortably.
    fn default() -> Self {
        EmbedLimits {
            max_exchanges: 100_000,
            max_bytes: 256 << 20,
        }
    }
}

/// An HTML report being written: [`new`](Self::new), [`push`](Self::push) per
/// exchange, [`finish`](Self::finish).
pub(crate) struct HtmlReport<W: Write> {
    out: W,
    limits: EmbedLimits,
    started: bool,
    embedded: u64,
    embedded_bytes: u64,
    left_out: u64,
    line: Vec<u8>,
    /// The blind spots the spool named (`tapline: notice` messages), shown at the top.
    notices: Vec<String>,
}

impl<W: Write> HtmlReport<W> {
    /// A report into `out`, with the default [`EmbedLimits`]. Nothing is written until
    /// the first [`push`](Self::push) or [`finish`](Self::finish).
    pub(crate) fn new(out: W) -> Self {
        Self::with_limits(out, EmbedLimits::default())
    }

    /// A report that embeds at most `limits`.
    pub(crate) fn with_limits(out: W, limits: EmbedLimits) -> Self {
        HtmlReport {
            out,
            limits,
            started: false,
            embedded: 0,
            embedded_bytes: 0,
            left_out: 0,
            line: Vec::with_capacity(4096),
            notices: Vec::new(),
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        write!(
            self.out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n\
             <title>tapline report</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
             <header><h1>tapline</h1>\
             <input id=\"filter\" type=\"search\" placeholder=\"filter: host:api method:POST status:5xx error text\" autocomplete=\"off\">\
             <span id=\"totals\"></span>\
             <span class=\"legend\"><span><i class=\"c-ok\"></i>2xx</span><span><i class=\"c-redirect\"></i>3xx</span>\
             <span><i class=\"c-client\"></i>4xx</span><span><i class=\"c-server\"></i>5xx</span>\
             <span><i class=\"c-failed\"></i>failed</span><span><i class=\"c-opaque\"></i>opaque TLS</span></span>\
             <span class=\"legend phases\" title=\"phases under a bar, where the records tell them\"><span><i class=\"ph-connect\"></i>connect</span>\
             <span><i class=\"ph-tls\"></i>TLS</span><span><i class=\"ph-send\"></i>send</span>\
             <span><i class=\"ph-wait\"></i>wait</span><span><i class=\"ph-receive\"></i>receive</span></span>\
             <span id=\"generated\" class=\"legend\"></span></header>\n\
             <div id=\"notice\" class=\"notice\"></div>\n\
             <main><div id=\"rows\"><div id=\"axisrow\"><span class=\"pad\">time since the first connect or request</span>\
             <div id=\"axis\"></div></div><div id=\"spacer\"></div></div><aside id=\"detail\"></aside></main>\n\
             <script type=\"application/x-ndjson\" id=\"tl-data\">\n"
        )
    }

    /// Embeds one exchange (already masked), or counts it when the limits are reached.
    pub(crate) fn push(&mut self, x: &Exchange) -> io::Result<()> {
        self.start()?;
        if self.embedded >= self.limits.max_exchanges {
            self.left_out += 1;
            return Ok(());
        }
        let mut value = json::to_value(x);
        if let Value::Object(map) = &mut value {
            map.insert("seq".into(), x.seq.into());
        }
        self.embed(&value)
    }

    /// Embeds one line of the Lambda extension's exported journal
    /// (`lambda/journal.rs`): an exchange's report object as the extension wrote it
    /// (masked before it was written), or an `{"invocation": ...}` line, which the page
    /// draws as an invocation's top bar.
    pub(crate) fn push_exported(
        &mut self,
        line: &serde_json::Map<String, Value>,
    ) -> io::Result<()> {
        self.start()?;
        if self.embedded >= self.limits.max_exchanges {
            self.left_out += 1;
            return Ok(());
        }
        self.embed(&Value::Object(line.clone()))
    }

    fn embed(&mut self, value: &Value) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value).map_err(io::Error::other)?;
        let len = self.line.len() as u64 + 1;
        if self.embedded_bytes + len > self.limits.max_bytes {
            self.left_out += 1;
            return Ok(());
        }
        write_script_safe(&mut self.out, &self.line)?;
        self.out.write_all(b"\n")?;
        self.embedded += 1;
        self.embedded_bytes += len;
        Ok(())
    }

    /// Closes the data, writes what the page needs to know about it and the script, and
    /// hands the writer back (flushed).
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.start()?;
        let generated = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let meta = json!({
            "generator": concat!("tapline ", env!("CARGO_PKG_VERSION")),
            "generated_unix_ns": generated,
            "embedded": self.embedded,
            "left_out": self.left_out,
            "max_exchanges": self.limits.max_exchanges,
            "max_bytes": self.limits.max_bytes,
            "notices": self.notices,
        });
        self.out
            .write_all(b"</script>\n<script type=\"application/json\" id=\"tl-meta\">")?;
        let meta = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        write_script_safe(&mut self.out, &meta)?;
        write!(
            self.out,
            "</script>\n<script>\n{JS}</script>\n</body>\n</html>\n"
        )?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes serialized JSON with every `<` as `\u003c`. In JSON text `<` can only stand
/// inside a string, where the escape means the same character.
fn write_script_safe(out: &mut impl Write, json: &[u8]) -> io::Result<()> {
    let mut rest = json;
    while let Some(at) = rest.iter().position(|&b| b == b'<') {
        out.write_all(&rest[..at])?;
        out.write_all(b"\\u003c")?;
        rest = &rest[at + 1..];
    }
    out.write_all(rest)
}

/// Writes the exchanges as one page.
pub(crate) fn write(exchanges: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    let mut report = HtmlReport::new(out);
    for x in exchanges {
        report.push(x)?;
    }
    report.finish().map(drop)
}

/// `--format html` as a [`ReportSink`]: exchanges embedded as they come; the page is
/// closed (with the run's notices) at the end.
pub(crate) struct HtmlSink<'a> {
    report: Option<HtmlReport<Box<dyn Write + Send + 'a>>>,
}

impl<'a> HtmlSink<'a> {
    pub(crate) fn new(out: Box<dyn Write + Send + 'a>) -> Self {
        HtmlSink {
            report: Some(HtmlReport::new(out)),
        }
    }
}

impl ReportSink for HtmlSink<'_> {
    fn push(&mut self, x: &Exchange) -> io::Result<()> {
        match self.report.as_mut() {
            Some(r) => r.push(x),
            None => Ok(()),
        }
    }

    fn push_exported(&mut self, line: &serde_json::Map<String, Value>) -> io::Result<bool> {
        match self.report.as_mut() {
            Some(r) => r.push_exported(line).map(|()| true),
            None => Ok(false),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.report.as_mut() {
            Some(r) => r.out.flush(),
            None => Ok(()),
        }
    }

    fn finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        let Some(mut report) = self.report.take() else {
            return Ok(());
        };
        report.notices = summary.notices.iter().map(|n| n.message()).collect();
        report.finish().map(drop)
    }
}

#[cfg(test)]
mod tests;

//! Exchanges reported as they complete: `tapline run` while the program runs, and
//! `tapline show --follow`.
//!
//! Why this shape: a report that waits for the end is useless for a server, a daemon or
//! a long batch job, and keeping every exchange until then makes memory grow with the
//! run. So the spool is followed by an [`ExchangeFeed`] (the same incremental
//! reassembly the Lambda extension uses: each exchange handed out once, when final, its
//! records dropped then), each batch of final exchanges goes through the one
//! [`Pipeline`] (nothing unmasked reaches a sink), in the order they completed, and
//! into a [`ReportSink`], which keeps nothing once written. What stays in memory is the
//! state of the connections still open, and the [`RunSummary`] counts.

use std::io;

use crate::assemble::Totals;
use crate::exchange::Exchange;
use crate::lambda::feed::ExchangeFeed;
use crate::pipeline::Pipeline;
use crate::report::sink::{ReportSink, RunSummary};

/// Bytes of segment records one read takes at most (whole segments: one 4 MiB segment
/// at the default size): what a reader that lags behind its writers holds in memory at
/// once; the rest waits in the spool.
pub(super) const POLL_BUDGET: u64 = 2 << 20;

/// Bounded reads one [`LiveReport::poll`] makes at most before it returns (so that a
/// caller looking at a stop flag between polls gets to it while a writer outruns us).
const STEPS_PER_POLL: usize = 64;

/// Exchanges kept for `--otlp` before they are sent as one batch.
const OTLP_BATCH: usize = 4096;

/// A spool followed and reported as it is written.
pub(super) struct LiveReport<'a> {
    feed: ExchangeFeed,
    pipeline: Pipeline,
    sink: Box<dyn ReportSink + Send + 'a>,
    summary: RunSummary,
    /// The first error writing the report; nothing more is written after it (the spool
    /// is still followed, so that the program's segments keep being handed back).
    write_error: Option<io::Error>,
    /// Record files read to their end are deleted once they cannot grow.
    delete_consumed: bool,
    /// `--otlp`: exchanges waiting to be exported, and where full batches go.
    otlp: Option<OtlpBatches<'a>>,
}

/// Where a full batch of exchanges for `--otlp` goes.
pub(super) type SendBatch<'a> = Box<dyn FnMut(&[Exchange]) + Send + 'a>;

/// Exchanges for `--otlp`, sent a batch at a time so that they do not pile up.
pub(super) struct OtlpBatches<'a> {
    kept: Vec<Exchange>,
    send: SendBatch<'a>,
}

impl<'a> OtlpBatches<'a> {
    pub(super) fn new(send: SendBatch<'a>) -> Self {
        OtlpBatches {
            kept: Vec::new(),
            send,
        }
    }

    fn add(&mut self, exchanges: &[Exchange]) {
        self.kept.extend_from_slice(exchanges);
        if self.kept.len() >= OTLP_BATCH {
            self.send_kept();
        }
    }

    fn send_kept(&mut self) {
        if !self.kept.is_empty() {
            (self.send)(&self.kept);
            self.kept.clear();
        }
    }
}

/// What a finished live report says about the run.
pub(super) struct LiveOutcome {
    pub summary: RunSummary,
    pub totals: Totals,
    pub write_error: Option<io::Error>,
}

impl<'a> LiveReport<'a> {
    pub(super) fn new(
        feed: ExchangeFeed,
        pipeline: Pipeline,
        sink: Box<dyn ReportSink + Send + 'a>,
        delete_consumed: bool,
        otlp: Option<OtlpBatches<'a>>,
    ) -> Self {
        LiveReport {
            feed,
            pipeline,
            sink,
            summary: RunSummary::default(),
            write_error: None,
            delete_consumed,
            otlp,
        }
    }

    /// Reads what was written since the last call, a bounded read at a time
    /// ([`POLL_BUDGET`]), and reports the exchanges each read made final.
    pub(super) fn poll(&mut self) {
        for _ in 0..STEPS_PER_POLL {
            self.step();
            if !self.feed.more_waiting() {
                break;
            }
        }
        if self.delete_consumed {
            self.feed.delete_consumed();
        }
    }

    /// Reads until nothing new comes: the writers are gone, so every segment finishes.
    pub(super) fn drain(&mut self) {
        let mut quiet = 0;
        while quiet < 2 {
            let before = self.feed.segment_stats();
            let n = self.step();
            quiet = if n == 0 && self.feed.segment_stats() == before {
                quiet + 1
            } else {
                0
            };
        }
    }

    /// Reports what is still pending (exchanges still open are final now: they are
    /// printed with their state, `no response` or `incomplete response`) and closes the
    /// report.
    pub(super) fn finish(mut self) -> LiveOutcome {
        loop {
            self.step();
            if !self.feed.more_waiting() {
                break;
            }
        }
        let rest = self.feed.take_final(true);
        self.emit(rest);
        if let Some(o) = self.otlp.as_mut() {
            o.send_kept();
        }
        let totals = self.feed.totals();
        self.summary.dropped_records = totals.dropped_records;
        self.summary.lost_exchanges = totals.lost_exchanges;
        if self.write_error.is_none() {
            if let Err(e) = self.sink.finish(&self.summary) {
                self.write_error = Some(e);
            }
        }
        LiveOutcome {
            summary: self.summary,
            totals,
            write_error: self.write_error,
        }
    }

    /// One bounded read, and the exchanges it made final reported. Returns the records
    /// read.
    fn step(&mut self) -> usize {
        let n = self.feed.read_new().unwrap_or(0);
        self.summary.notices.extend(self.feed.take_notices());
        let done = self.feed.take_final(false);
        self.emit(done);
        n
    }

    /// Masks, cuts and writes a batch of final exchanges, in the order they completed.
    fn emit(&mut self, mut batch: Vec<Exchange>) {
        if batch.is_empty() {
            return;
        }
        batch.sort_by_key(|x| {
            (
                x.start_unix_ns.saturating_add(x.duration_ns),
                x.start_unix_ns,
                x.conn_id,
                x.seq,
            )
        });
        self.pipeline.process(&mut batch);
        for x in &batch {
            self.summary.count(x);
        }
        if self.write_error.is_none() {
            let written = batch
                .iter()
                .try_for_each(|x| self.sink.push(x))
                .and_then(|()| self.sink.flush());
            if let Err(e) = written {
                self.write_error = Some(e);
            }
        }
        if let Some(o) = self.otlp.as_mut() {
            o.add(&batch);
        }
    }
}

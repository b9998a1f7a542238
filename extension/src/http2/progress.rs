//! Which streams of an HTTP/2 connection are over, for a reader that hands each
//! stream out once, as soon as it is final, while the connection lives on (the Lambda
//! extension's feed).
//!
//! A stream is final when it was reset, or when its response direction ended (an
//! `H2StreamEnd`: END_STREAM, reset, or cut off) and its request direction did too (a
//! pushed stream has no request direction on the wire: its request is the server's
//! PUSH_PROMISE). The request direction is the one its first HEADERS travelled; a
//! stream whose first HEADERS was not read yet is not final.

use std::collections::{BTreeMap, BTreeSet};

use tapline_record::{Direction, H2StartHow};

use super::blocks::{other, slot};
use crate::spool::H2Event;

#[derive(Clone, Copy, Debug, Default)]
struct StreamState {
    /// Direction of its first HEADERS block (the request's).
    request_dir: Option<Direction>,
    /// For a pushed stream, the direction of the PUSH_PROMISE (the response's).
    promise_dir: Option<Direction>,
    /// An `H2StreamEnd` was read for egress, ingress.
    ended: [bool; 2],
    reset: bool,
}

impl StreamState {
    fn is_final(&self) -> bool {
        if self.reset {
            return true;
        }
        let ended = |d: Direction| self.ended[slot(d)];
        match (self.promise_dir, self.request_dir) {
            (Some(resp), _) => ended(resp),
            (None, Some(req)) => ended(req) && ended(other(req)),
            (None, None) => false,
        }
    }
}

/// The streams of one HTTP/2 connection, as far as its records were read.
#[derive(Clone, Debug, Default)]
pub struct StreamProgress {
    streams: BTreeMap<u32, StreamState>,
    /// Streams handed out: never again, and their late records are of no use (except
    /// header blocks, which the HPACK state needs).
    handed_out: BTreeSet<u32>,
    /// After an h2c upgrade: the HTTP/1 request (`msg_seq`) that is stream 1's request.
    upgrade_msg_seq: Option<u32>,
}

/// The stream an HTTP/2 event belongs to (a PUSH_PROMISE block: the promised stream);
/// `None` for connection-level events.
pub fn event_stream(event: &H2Event) -> Option<u32> {
    let id = match event {
        H2Event::HeaderBlock(b) => b.promised.filter(|&p| p != 0).unwrap_or(b.stream),
        H2Event::Data { stream, .. } | H2Event::Reset { stream, .. } => *stream,
        H2Event::StreamEnd(e) => e.stream,
        H2Event::Start { .. } | H2Event::GoAway { .. } | H2Event::Settings { .. } => 0,
    };
    (id != 0).then_some(id)
}

impl StreamProgress {
    /// Takes note of one record of the connection.
    pub fn absorb(&mut self, dir: Direction, event: &H2Event) {
        if let H2Event::Start {
            how: H2StartHow::H2cUpgrade,
            upgrade_msg_seq,
        } = event
        {
            self.upgrade_msg_seq = Some(*upgrade_msg_seq);
        }
        let Some(id) = event_stream(event) else {
            return;
        };
        if self.handed_out.contains(&id) {
            return;
        }
        let s = self.streams.entry(id).or_default();
        match event {
            H2Event::HeaderBlock(b) if b.promised.is_some_and(|p| p != 0) => {
                s.promise_dir = Some(dir);
            }
            H2Event::HeaderBlock(_) => {
                s.request_dir.get_or_insert(dir);
            }
            H2Event::StreamEnd(_) => s.ended[slot(dir)] = true,
            H2Event::Reset { .. } => s.reset = true,
            _ => {}
        }
        // Stream 1 after an h2c upgrade: its request went as HTTP/1 (egress), ended.
        if id == 1 && self.upgrade_msg_seq.is_some() && s.request_dir.is_none() {
            s.request_dir = Some(Direction::Egress);
            s.ended[0] = true;
        }
    }

    /// Is the stream over (see the module docs)?
    pub fn is_final(&self, id: u32) -> bool {
        self.streams.get(&id).is_some_and(StreamState::is_final)
    }

    /// Marks the stream handed out. False if it was already.
    pub fn hand_out(&mut self, id: u32) -> bool {
        self.streams.remove(&id);
        self.handed_out.insert(id)
    }

    /// Some stream of the connection was handed out (so the connection is not one
    /// "without a stream", to be reported by its byte counts).
    pub fn any_handed_out(&self) -> bool {
        !self.handed_out.is_empty()
    }

    pub fn was_handed_out(&self, id: u32) -> bool {
        self.handed_out.contains(&id)
    }

    /// After an h2c upgrade: the HTTP/1 request that stream 1 answers.
    pub fn upgrade_msg_seq(&self) -> Option<u32> {
        self.upgrade_msg_seq
    }
}

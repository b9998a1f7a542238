//! Incremental HTTP/1.x framer for one direction of one connection.
//!
//! Why it lives in the hook: to copy only what is kept (whole heads, the first
//! `TAPLINE_MAX_BODY` bytes of each body) and count the rest, the writer must know where
//! each message's head and body start and end as the bytes pass. It therefore follows
//! the framing rules of RFC 9112 — Content-Length, chunked transfer coding (with
//! trailers), close-delimited responses, no body for HEAD/1xx/204/304 — one call's bytes
//! at a time, with all state in this fixed-size struct: no allocation, no lookahead
//! beyond the bytes it is given. Heads are scanned byte by byte (they are small); body
//! bytes are skipped in bulk.
//!
//! The framer reports what it found to a [`FrameSink`]; it never parses header values
//! beyond what framing needs. Parsing heads into names and values is the extension's job.

use tapline_record::{msg_flags, Direction, MsgEnd, Stamp};

/// Longest head the framer captures; longer heads are counted and flagged truncated.
pub const HEAD_CAPTURE_LIMIT: u64 = 32 * 1024;
/// A head that has not ended after this many bytes is not HTTP: stop following.
pub const HEAD_GIVE_UP: u64 = 256 * 1024;

/// Which side of the conversation a framer reads. The values are the record's
/// [`Direction`] bytes; zero is `Request`, so a zeroed [`Framer`] stays valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Requests (bytes the process writes: `Direction::Egress`).
    #[default]
    Request = 0,
    /// Responses (bytes the process reads: `Direction::Ingress`).
    Response = 1,
}

/// Where the framer puts what it found. Slices borrow the buffer given to
/// [`Framer::feed`] (lifetime `'a`), so a sink may hold one until a later call.
pub trait FrameSink<'a> {
    /// Captured head bytes of message `msg_seq`, at `offset` within the head.
    fn head(&mut self, msg_seq: u32, offset: u64, bytes: &'a [u8]);
    /// Captured (decoded) body bytes of message `msg_seq`, at `offset` within the body.
    fn body(&mut self, msg_seq: u32, offset: u64, bytes: &'a [u8]);
    /// Message `end.msg_seq` is complete, or was cut off (see `end.flags`). Its start
    /// stamp is the one the caller passed with the message's first byte.
    fn end(&mut self, end: &MsgEnd);
    /// Message `p.msg_seq` is still in progress; these are its counts so far. Sent
    /// while a body runs past the captured prefix, at most every [`PROGRESS_EVERY_NS`]
    /// or [`PROGRESS_EVERY_BYTES`], so that a process killed mid-transfer leaves
    /// evidence of how far it got.
    fn progress(&mut self, p: &MsgEnd);
}

/// A body past its captured prefix reports its counts at most this often...
pub const PROGRESS_EVERY_NS: u64 = 100_000_000;
/// ...or after this many more body bytes, whichever comes first.
pub const PROGRESS_EVERY_BYTES: u64 = 1 << 20;

/// What the framer learnt from a request that the response framer needs: the k-th
/// request's method decides whether the k-th response has a body (HEAD) or opens a
/// tunnel (CONNECT). Kept as bit rings indexed by request number modulo 64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestKinds {
    pub head_bits: u64,
    pub connect_bits: u64,
}

/// What a call to [`Framer::feed`] ended with, beyond what went to the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Still following the connection.
    Continue,
    /// The bytes were not HTTP/1.x (or exceeded a limit): stop following.
    Malformed,
    /// 101 Switching Protocols or a successful CONNECT: what follows is not HTTP/1.x.
    Upgraded,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Between messages (skipping stray CRLFs).
    #[default]
    Idle = 0,
    /// In the start line.
    StartLine,
    /// In a header line (or at the start of one).
    Headers,
    /// Fixed-length body: `remaining` bytes to go.
    Fixed,
    /// Chunked: reading the chunk-size line.
    ChunkSize,
    /// Chunked: in chunk data, `remaining` bytes to go.
    ChunkData,
    /// Chunked: the CRLF after chunk data.
    ChunkDataEnd,
    /// Chunked: trailer section after the last chunk.
    Trailers,
    /// Body until the connection closes.
    UntilClose,
    /// Not HTTP, or the protocol switched: ignore everything.
    Stopped,
}

/// Header names the framer cares about, matched case-insensitively as bytes arrive.
const CONTENT_LENGTH: &[u8] = b"content-length";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding";
const CHUNKED: &[u8] = b"chunked";

const H_NONE: u8 = 0;
const H_CL: u8 = 1;
const H_TE: u8 = 2;

/// What [`Framer::skip_run`] did.
enum Skip {
    /// Nothing to skip here: take the next byte by byte.
    No,
    /// Skipped this many bytes.
    To(usize),
    /// A NUL in a request line, this many bytes in (counted): framing stops.
    Malformed(usize),
    /// The blank line that ends the head, this many bytes (counted).
    HeadEnd(usize),
}

/// The index of the first `b` in `data` (glibc's vectorised `memchr`).
fn find_byte(b: u8, data: &[u8]) -> Option<usize> {
    if data.is_empty() {
        return None;
    }
    // SAFETY: `data` is valid for `data.len()` bytes; memchr reads no further.
    let p = unsafe { libc::memchr(data.as_ptr().cast(), i32::from(b), data.len()) };
    (!p.is_null()).then(|| p as usize - data.as_ptr() as usize)
}

#[cfg(not(test))]
#[inline(always)]
fn skips_enabled() -> bool {
    true
}

#[cfg(test)]
std::thread_local! {
    /// Tests turn the run skipping off to compare it with the byte-wise steps.
    pub(crate) static SKIPS: core::cell::Cell<bool> = const { core::cell::Cell::new(true) };
}

#[cfg(test)]
fn skips_enabled() -> bool {
    SKIPS.with(|s| s.get())
}

/// Per-direction framing state. All-zero is a valid initial state ([`Framer::new`]),
/// so a table of framers can live in zeroed memory.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Framer {
    phase: Phase,
    /// In the start line or a header line: the line's byte position; in ChunkSize:
    /// 0 = digits, 1 = extension, 2 = after CR.
    line_pos: u32,
    /// Candidate header names still matching (bit 0: Content-Length, bit 1: TE).
    name_mask: u8,
    /// Header whose value is being read.
    value_of: u8,
    /// Bytes of "chunked" matched at the end of the Transfer-Encoding value so far.
    te_match: u8,
    /// The message carries `Transfer-Encoding: chunked`.
    chunked: bool,
    /// A Content-Length was seen and is valid.
    has_length: bool,
    /// A `\r` ended the previous byte of the current line.
    saw_cr: bool,
    /// Request: method letters; response: version/status digits.
    method: [u8; 8],
    method_len: u8,
    http_minor: u8,
    status: u16,
    flags: u16,
    msg_seq: u32,
    /// Requests seen, or final (non-1xx) responses seen.
    final_count: u32,
    content_length: u64,
    remaining: u64,
    head_len: u64,
    body_len: u64,
    body_captured: u64,
    wire_len: u64,
    start: Stamp,
    /// The role of the message in progress (set with its first byte).
    role: Role,
    /// Body bytes and monotonic time of the last progress report (or the message's
    /// start).
    progress_body: u64,
    progress_mono_ns: u64,
}

impl Framer {
    pub const fn new() -> Self {
        Framer {
            phase: Phase::Idle,
            line_pos: 0,
            name_mask: 0,
            value_of: H_NONE,
            te_match: 0,
            chunked: false,
            has_length: false,
            saw_cr: false,
            method: [0; 8],
            method_len: 0,
            http_minor: 1,
            status: 0,
            flags: 0,
            msg_seq: 0,
            final_count: 0,
            content_length: 0,
            remaining: 0,
            head_len: 0,
            body_len: 0,
            body_captured: 0,
            wire_len: 0,
            start: Stamp::ZERO,
            role: Role::Request,
            progress_body: 0,
            progress_mono_ns: 0,
        }
    }

    /// True between messages: no message is partly seen.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    /// True once the framer gave up or the protocol switched.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// Messages begun so far in this direction.
    pub fn messages(&self) -> u32 {
        self.msg_seq
    }

    /// Feeds bytes the call reported as done. `kinds` is shared between the two
    /// directions of a connection: the request framer writes it, the response framer
    /// reads it. `max_body` is how many body bytes per message to capture.
    pub fn feed<'a>(
        &mut self,
        role: Role,
        data: &'a [u8],
        now: Stamp,
        max_body: u64,
        kinds: &mut RequestKinds,
        sink: &mut impl FrameSink<'a>,
    ) -> Verdict {
        let mut i = 0usize;
        while i < data.len() {
            match self.phase {
                Phase::Stopped => return Verdict::Malformed,
                Phase::Idle => {
                    let b = data[i];
                    if b == b'\r' || b == b'\n' {
                        i += 1;
                        continue;
                    }
                    self.begin_message(role, now);
                }
                Phase::StartLine | Phase::Headers => {
                    let start = i;
                    let (consumed, verdict) = self.scan_head(role, &data[i..]);
                    i += consumed;
                    self.capture_head(&data[start..i], sink);
                    if verdict.is_some() {
                        return self.fail(sink);
                    }
                    if self.head_len > HEAD_GIVE_UP {
                        return self.fail(sink);
                    }
                    if self.phase != Phase::StartLine && self.phase != Phase::Headers {
                        // The head just ended.
                        if let Some(v) = self.after_head(role, kinds, sink) {
                            return v;
                        }
                    }
                }
                Phase::Fixed | Phase::ChunkData | Phase::UntilClose => {
                    i += self.body_run(&data[i..], now, max_body, sink);
                }
                Phase::ChunkSize => {
                    let b = data[i];
                    i += 1;
                    self.wire_len += 1;
                    if let Err(()) = self.chunk_size_byte(b) {
                        return self.fail(sink);
                    }
                }
                Phase::ChunkDataEnd => {
                    let b = data[i];
                    i += 1;
                    self.wire_len += 1;
                    match b {
                        b'\r' if !self.saw_cr => self.saw_cr = true,
                        b'\n' => {
                            self.phase = Phase::ChunkSize;
                            self.line_pos = 0;
                            self.remaining = 0;
                            self.saw_cr = false;
                        }
                        _ => return self.fail(sink),
                    }
                }
                Phase::Trailers => {
                    let b = data[i];
                    i += 1;
                    self.wire_len += 1;
                    match b {
                        b'\n' => {
                            if self.line_pos == 0 {
                                self.finish(0, sink);
                            } else {
                                self.line_pos = 0;
                            }
                        }
                        b'\r' if self.line_pos == 0 => {}
                        _ => self.line_pos += 1,
                    }
                }
            }
        }
        Verdict::Continue
    }

    /// Body bytes in bulk (fixed length, chunk data, or until close): takes what the
    /// body still has in `data`, and returns how many bytes that was.
    fn body_run<'a>(
        &mut self,
        data: &'a [u8],
        now: Stamp,
        max_body: u64,
        sink: &mut impl FrameSink<'a>,
    ) -> usize {
        let avail = data.len() as u64;
        let take = if self.phase == Phase::UntilClose {
            avail
        } else {
            avail.min(self.remaining)
        } as usize;
        self.body_bytes(&data[..take], max_body, sink);
        self.wire_len += take as u64;
        // Past the captured prefix, and not about to end (its end says it all).
        let ends_here = self.phase == Phase::Fixed && self.remaining == take as u64;
        if self.body_len > max_body && take > 0 && !ends_here {
            self.maybe_progress(now, sink);
        }
        if self.phase != Phase::UntilClose {
            self.remaining -= take as u64;
            if self.remaining == 0 {
                if self.phase == Phase::Fixed {
                    self.finish(0, sink);
                } else {
                    self.phase = Phase::ChunkDataEnd;
                    self.saw_cr = false;
                }
            }
        }
        take
    }

    /// The connection ended (EOF, reset, or close). A close-delimited body is complete;
    /// any other message in progress is cut off.
    pub fn finish_on_close<'a>(&mut self, sink: &mut impl FrameSink<'a>) {
        match self.phase {
            Phase::Idle | Phase::Stopped => {}
            Phase::UntilClose => self.finish(0, sink),
            _ => self.finish(msg_flags::INCOMPLETE, sink),
        }
    }

    fn begin_message(&mut self, role: Role, now: Stamp) {
        let seq = self.msg_seq;
        let final_count = self.final_count;
        *self = Framer::new();
        self.msg_seq = seq;
        self.final_count = final_count;
        self.phase = Phase::StartLine;
        self.start = now;
        self.role = role;
        self.progress_mono_ns = now.mono_ns;
    }

    /// Reports the counts so far when the last report (or the start) is
    /// [`PROGRESS_EVERY_NS`] or [`PROGRESS_EVERY_BYTES`] behind.
    fn maybe_progress<'a>(&mut self, now: Stamp, sink: &mut impl FrameSink<'a>) {
        let due = now.mono_ns.saturating_sub(self.progress_mono_ns) >= PROGRESS_EVERY_NS
            || self.body_len - self.progress_body >= PROGRESS_EVERY_BYTES;
        if !due {
            return;
        }
        self.progress_mono_ns = now.mono_ns;
        self.progress_body = self.body_len;
        sink.progress(&self.counts(self.flags));
    }

    /// Scans head bytes until the head ends or the data runs out. Returns bytes consumed
    /// and a verdict if framing must stop.
    ///
    /// Byte by byte where a byte can change what we learn (the method, the status, the
    /// `Content-Length` and `Transfer-Encoding` lines); a run that cannot — the rest of
    /// a request line after its method, a status line's reason phrase, any header line
    /// whose first byte starts neither name — is skipped to its line end with one
    /// `memchr`, with exactly the effect the byte-wise steps would have had.
    fn scan_head(&mut self, role: Role, data: &[u8]) -> (usize, Option<Verdict>) {
        let mut n = 0;
        while n < data.len() {
            if skips_enabled() && self.may_skip(role) {
                match self.skip_run(role, &data[n..]) {
                    Skip::No => {}
                    Skip::To(k) => {
                        n += k;
                        continue;
                    }
                    Skip::Malformed(k) => return (n + k, Some(Verdict::Malformed)),
                    Skip::HeadEnd(k) => return (n + k, None),
                }
            }
            let b = data[n];
            n += 1;
            self.head_len += 1;
            self.wire_len += 1;
            if self.phase == Phase::StartLine {
                if b == b'\n' {
                    if !self.start_line_ok(role) {
                        return (n, Some(Verdict::Malformed));
                    }
                    self.phase = Phase::Headers;
                    self.line_pos = 0;
                    self.saw_cr = false;
                    continue;
                }
                if !self.start_line_byte(role, b) {
                    return (n, Some(Verdict::Malformed));
                }
                self.line_pos += 1;
                continue;
            }
            // Phase::Headers
            if b == b'\n' {
                if self.line_pos == 0 {
                    // Blank line: the head is complete. The caller decides the body.
                    self.phase = Phase::Fixed;
                    return (n, None);
                }
                self.end_header_line();
                continue;
            }
            if b == b'\r' {
                self.saw_cr = true;
                continue;
            }
            self.header_byte(b);
            self.line_pos += 1;
        }
        (data.len(), None)
    }

    /// Could [`Framer::skip_run`] take a run here? Cheap, inline: false while a method,
    /// a status code or a header name of interest is being read byte by byte.
    #[inline(always)]
    fn may_skip(&self, role: Role) -> bool {
        let pos = self.line_pos;
        match self.phase {
            Phase::StartLine => match role {
                Role::Request => {
                    pos == 0 || (self.method_len > 0 && pos > u32::from(self.method_len))
                }
                Role::Response => pos == 0 || pos >= 12,
            },
            Phase::Headers => {
                pos == 0
                    || self.value_of == H_CL
                    || (self.value_of == H_NONE && self.name_mask == 0)
            }
            _ => false,
        }
    }

    /// A run at the start of `data` that the byte-wise steps would pass over without
    /// learning anything, taken in one step (see [`Framer::scan_head`]).
    fn skip_run(&mut self, role: Role, data: &[u8]) -> Skip {
        let pos = self.line_pos as usize;
        match self.phase {
            Phase::StartLine if pos == 0 => match role {
                Role::Request => self.skip_method(data),
                Role::Response => self.skip_status(data),
            },
            Phase::StartLine => {
                let past_fixed_part = match role {
                    // Past the method and the space after it: each byte only has to
                    // be non-NUL, and the last digit is the version's minor number.
                    Role::Request => self.method_len > 0 && pos > self.method_len as usize,
                    // The reason phrase: anything goes.
                    Role::Response => pos >= 12,
                };
                if !past_fixed_part {
                    return Skip::No;
                }
                let run = &data[..find_byte(b'\n', data).unwrap_or(data.len())];
                if run.is_empty() {
                    return Skip::No;
                }
                if role == Role::Request {
                    let nul = find_byte(0, run);
                    let seen = &run[..nul.unwrap_or(run.len())];
                    if let Some(&d) = seen.iter().rev().find(|b| b.is_ascii_digit()) {
                        self.http_minor = d - b'0';
                    }
                    if let Some(nul) = nul {
                        self.line_pos += nul as u32;
                        self.head_len += nul as u64 + 1;
                        self.wire_len += nul as u64 + 1;
                        return Skip::Malformed(nul + 1);
                    }
                }
                self.line_pos += run.len() as u32;
                self.head_len += run.len() as u64;
                self.wire_len += run.len() as u64;
                Skip::To(run.len())
            }
            Phase::Headers if pos == 0 => {
                let first = data[0];
                if first == b'\n' || data.starts_with(b"\r\n") {
                    // The blank line: the head is complete.
                    let k = if first == b'\n' { 1 } else { 2 };
                    self.saw_cr |= k == 2;
                    self.head_len += k as u64;
                    self.wire_len += k as u64;
                    self.phase = Phase::Fixed;
                    return Skip::HeadEnd(k);
                }
                if first == b'\r' {
                    return Skip::No;
                }
                if matches!(first, b'c' | b'C' | b't' | b'T') {
                    return self.skip_name(data);
                }
                // A header line we do not read: its first byte already rules out both
                // names (or makes it a folded continuation). Up to and including its
                // `\n`, the line only ends; without one, take it byte by byte.
                let Some(end) = find_byte(b'\n', data) else {
                    return Skip::No;
                };
                self.head_len += end as u64 + 1;
                self.wire_len += end as u64 + 1;
                self.te_match = 0;
                self.end_header_line();
                Skip::To(end + 1)
            }
            Phase::Headers if self.value_of == H_NONE && self.name_mask == 0 => {
                // The rest of a header line whose name matched neither: up to its `\n`
                // (left to the byte-wise step, which ends the line), bytes only count.
                let run = &data[..find_byte(b'\n', data).unwrap_or(data.len())];
                if run.is_empty() {
                    return Skip::No;
                }
                let crs = run.iter().filter(|&&b| b == b'\r').count();
                self.saw_cr |= crs > 0;
                self.line_pos += (run.len() - crs) as u32;
                self.head_len += run.len() as u64;
                self.wire_len += run.len() as u64;
                Skip::To(self.end_line_after(run.len(), data))
            }
            Phase::Headers if self.value_of == H_CL => {
                // A Content-Length value: the byte-wise step's digits and checks, in a
                // loop of its own, then the line's end.
                let run = &data[..find_byte(b'\n', data).unwrap_or(data.len())];
                for &b in run {
                    if b == b'\r' {
                        self.saw_cr = true;
                        continue;
                    }
                    self.length_byte(b);
                    self.line_pos += 1;
                }
                self.head_len += run.len() as u64;
                self.wire_len += run.len() as u64;
                match self.end_line_after(run.len(), data) {
                    0 => Skip::No,
                    k => Skip::To(k),
                }
            }
            _ => Skip::No,
        }
    }

    /// After a run of `k` bytes of a header line that began earlier (its `line_pos` is
    /// not 0): when `data[k]` is the line's `\n`, takes it as the byte-wise step does
    /// (ends the line). Returns the bytes taken in all.
    #[inline]
    fn end_line_after(&mut self, k: usize, data: &[u8]) -> usize {
        if data.get(k) == Some(&b'\n') && self.line_pos != 0 {
            self.head_len += 1;
            self.wire_len += 1;
            self.end_header_line();
            return k + 1;
        }
        k
    }

    /// At the start of a request line: the method and the space after it at once, when
    /// both are in `data` and the method is one the byte-wise steps accept (1 to 32 of
    /// `A-Z`, `-`, `_`); otherwise nothing (the byte-wise steps decide).
    fn skip_method(&mut self, data: &[u8]) -> Skip {
        let limit = data.len().min(33);
        let Some(sp) = data[..limit].iter().position(|&b| b == b' ') else {
            return Skip::No;
        };
        let method = &data[..sp];
        if method.is_empty()
            || !method
                .iter()
                .all(|&b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
        {
            return Skip::No;
        }
        let keep = sp.min(self.method.len());
        self.method[..keep].copy_from_slice(&method[..keep]);
        self.method_len = sp as u8;
        self.line_pos += sp as u32 + 1;
        self.head_len += sp as u64 + 1;
        self.wire_len += sp as u64 + 1;
        Skip::To(sp + 1)
    }

    /// At the start of a status line: `HTTP/1.x NNN` at once when all twelve bytes are
    /// in `data` and well-formed; otherwise nothing (the byte-wise steps decide).
    fn skip_status(&mut self, data: &[u8]) -> Skip {
        let Some(d) = data.get(..12) else {
            return Skip::No;
        };
        if !d.starts_with(b"HTTP/1.")
            || !d[7].is_ascii_digit()
            || d[8] != b' '
            || !d[9..].iter().all(u8::is_ascii_digit)
        {
            return Skip::No;
        }
        self.http_minor = d[7] - b'0';
        for &c in &d[9..] {
            self.status = self.status * 10 + u16::from(c - b'0');
        }
        self.line_pos += 12;
        self.head_len += 12;
        self.wire_len += 12;
        Skip::To(12)
    }

    /// At the start of a header line that may name `Content-Length` or
    /// `Transfer-Encoding`: when the whole name and its `:` are in `data` (and no `\r`
    /// hides in it), compares the name at once and leaves the framer as the byte-wise
    /// steps would after the `:` (reading the value of one of the two, or nothing).
    fn skip_name(&mut self, data: &[u8]) -> Skip {
        let line = &data[..find_byte(b'\n', data).unwrap_or(data.len())];
        let Some(colon) = find_byte(b':', line) else {
            return Skip::No;
        };
        let name = &line[..colon];
        if find_byte(b'\r', name).is_some() {
            return Skip::No;
        }
        self.te_match = 0;
        self.name_mask = 0;
        self.value_of = H_NONE;
        if name.eq_ignore_ascii_case(CONTENT_LENGTH) {
            self.value_of = H_CL;
            self.content_length = 0;
            self.has_length = true;
        } else if name.eq_ignore_ascii_case(TRANSFER_ENCODING) {
            self.value_of = H_TE;
        }
        self.line_pos += colon as u32 + 1;
        self.head_len += colon as u64 + 1;
        self.wire_len += colon as u64 + 1;
        Skip::To(colon + 1)
    }

    fn start_line_byte(&mut self, role: Role, b: u8) -> bool {
        let pos = self.line_pos as usize;
        match role {
            Role::Request => {
                if self.method_len as usize == pos && b != b' ' {
                    // Still in the method token.
                    if !b.is_ascii_uppercase() && b != b'-' && b != b'_' {
                        return false;
                    }
                    if pos < self.method.len() {
                        self.method[pos] = b;
                    }
                    self.method_len = self.method_len.saturating_add(1);
                    return pos < 32;
                }
                if self.method_len == 0 {
                    return false;
                }
                // Version digit: "... HTTP/1.x" — remember the last digit seen.
                if b.is_ascii_digit() {
                    self.http_minor = b - b'0';
                }
                b != 0
            }
            Role::Response => {
                const PREFIX: &[u8] = b"HTTP/1.";
                if pos < PREFIX.len() {
                    return b == PREFIX[pos];
                }
                match pos {
                    7 => {
                        if b.is_ascii_digit() {
                            self.http_minor = b - b'0';
                            true
                        } else {
                            false
                        }
                    }
                    8 => b == b' ',
                    9..=11 => {
                        if b.is_ascii_digit() {
                            self.status = self.status * 10 + u16::from(b - b'0');
                            true
                        } else {
                            false
                        }
                    }
                    _ => true,
                }
            }
        }
    }

    fn start_line_ok(&self, role: Role) -> bool {
        match role {
            Role::Request => self.method_len > 0 && self.line_pos > self.method_len as u32,
            Role::Response => self.line_pos >= 12 && (100..=999).contains(&self.status),
        }
    }

    fn header_byte(&mut self, b: u8) {
        let pos = self.line_pos as usize;
        if pos == 0 {
            self.name_mask = 0b11;
            self.value_of = H_NONE;
            self.te_match = 0;
            if b == b' ' || b == b'\t' {
                // Obsolete line folding: a continuation, nothing to match.
                self.name_mask = 0;
            }
        }
        if self.value_of == H_NONE && self.name_mask != 0 {
            let lower = b.to_ascii_lowercase();
            if b == b':' {
                if self.name_mask & 1 != 0 && pos == CONTENT_LENGTH.len() {
                    self.value_of = H_CL;
                    self.content_length = 0;
                    self.has_length = true;
                } else if self.name_mask & 2 != 0 && pos == TRANSFER_ENCODING.len() {
                    self.value_of = H_TE;
                }
                self.name_mask = 0;
                return;
            }
            if CONTENT_LENGTH.get(pos) != Some(&lower) {
                self.name_mask &= !1;
            }
            if TRANSFER_ENCODING.get(pos) != Some(&lower) {
                self.name_mask &= !2;
            }
            return;
        }
        match self.value_of {
            H_CL => self.length_byte(b),
            H_TE => {
                let lower = b.to_ascii_lowercase();
                let m = self.te_match as usize;
                if m < CHUNKED.len() && CHUNKED[m] == lower {
                    self.te_match += 1;
                } else if (b == b' ' || b == b'\t') && m == CHUNKED.len() {
                    // Trailing whitespace after "chunked".
                } else {
                    self.te_match = u8::from(lower == b'c');
                }
            }
            _ => {}
        }
    }

    /// One byte of a `Content-Length` value (not a `\r`).
    #[inline(always)]
    fn length_byte(&mut self, b: u8) {
        if b.is_ascii_digit() {
            self.content_length = self
                .content_length
                .saturating_mul(10)
                .saturating_add(u64::from(b - b'0'));
        } else if b != b' ' && b != b'\t' {
            // "Content-Length: 5, 5" or garbage: treat as no valid length.
            self.has_length = false;
        }
    }

    fn end_header_line(&mut self) {
        if self.value_of == H_TE {
            self.chunked = self.te_match as usize == CHUNKED.len();
        }
        self.value_of = H_NONE;
        self.name_mask = 0;
        self.line_pos = 0;
        self.saw_cr = false;
    }

    fn capture_head<'a>(&mut self, bytes: &'a [u8], sink: &mut impl FrameSink<'a>) {
        let end = self.head_len;
        let start = end - bytes.len() as u64;
        if start >= HEAD_CAPTURE_LIMIT {
            self.flags |= msg_flags::HEAD_TRUNCATED;
            return;
        }
        let keep = (HEAD_CAPTURE_LIMIT - start).min(bytes.len() as u64) as usize;
        if keep < bytes.len() {
            self.flags |= msg_flags::HEAD_TRUNCATED;
        }
        if keep > 0 {
            sink.head(self.msg_seq, start, &bytes[..keep]);
        }
    }

    /// Decides how the body is delimited once the head has ended.
    fn after_head<'a>(
        &mut self,
        role: Role,
        kinds: &mut RequestKinds,
        sink: &mut impl FrameSink<'a>,
    ) -> Option<Verdict> {
        match role {
            Role::Request => {
                let bit = 1u64 << (self.final_count % 64);
                let method = &self.method[..(self.method_len as usize).min(8)];
                if method == b"HEAD" {
                    kinds.head_bits |= bit;
                } else {
                    kinds.head_bits &= !bit;
                }
                if method == b"CONNECT" {
                    kinds.connect_bits |= bit;
                } else {
                    kinds.connect_bits &= !bit;
                }
                self.final_count = self.final_count.wrapping_add(1);
                if self.chunked {
                    self.start_chunked();
                } else if self.has_length && self.content_length > 0 {
                    self.phase = Phase::Fixed;
                    self.remaining = self.content_length;
                } else {
                    self.finish(msg_flags::NO_BODY, sink);
                }
                None
            }
            Role::Response => {
                let status = self.status;
                let bit = 1u64 << (self.final_count % 64);
                if (100..200).contains(&status) {
                    self.finish(msg_flags::NO_BODY, sink);
                    if status == 101 {
                        self.phase = Phase::Stopped;
                        return Some(Verdict::Upgraded);
                    }
                    return None;
                }
                self.final_count = self.final_count.wrapping_add(1);
                if kinds.connect_bits & bit != 0 && (200..300).contains(&status) {
                    self.finish(msg_flags::NO_BODY, sink);
                    self.phase = Phase::Stopped;
                    return Some(Verdict::Upgraded);
                }
                if kinds.head_bits & bit != 0 || status == 204 || status == 304 {
                    self.finish(msg_flags::NO_BODY, sink);
                } else if self.chunked {
                    self.start_chunked();
                } else if self.has_length {
                    if self.content_length == 0 {
                        self.finish(0, sink);
                    } else {
                        self.phase = Phase::Fixed;
                        self.remaining = self.content_length;
                    }
                } else {
                    self.flags |= msg_flags::UNTIL_CLOSE;
                    self.phase = Phase::UntilClose;
                }
                None
            }
        }
    }

    fn start_chunked(&mut self) {
        self.flags |= msg_flags::CHUNKED;
        self.phase = Phase::ChunkSize;
        self.line_pos = 0;
        self.remaining = 0;
        self.saw_cr = false;
    }

    /// One byte of a chunk-size line: `1a3f[;ext]\r\n`.
    fn chunk_size_byte(&mut self, b: u8) -> Result<(), ()> {
        match self.line_pos {
            0 => {
                if let Some(d) = hex_value(b) {
                    if self.remaining > (u64::MAX >> 4) {
                        return Err(());
                    }
                    self.remaining = (self.remaining << 4) | u64::from(d);
                    self.saw_cr = true; // at least one digit seen
                    Ok(())
                } else if !self.saw_cr {
                    Err(())
                } else if b == b';' || b == b' ' || b == b'\t' {
                    self.line_pos = 1;
                    Ok(())
                } else if b == b'\r' {
                    self.line_pos = 2;
                    Ok(())
                } else if b == b'\n' {
                    self.chunk_size_done();
                    Ok(())
                } else {
                    Err(())
                }
            }
            1 => {
                if b == b'\r' {
                    self.line_pos = 2;
                } else if b == b'\n' {
                    self.chunk_size_done();
                }
                Ok(())
            }
            _ => {
                if b == b'\n' {
                    self.chunk_size_done();
                    Ok(())
                } else {
                    Err(())
                }
            }
        }
    }

    fn chunk_size_done(&mut self) {
        self.saw_cr = false;
        self.line_pos = 0;
        if self.remaining == 0 {
            self.phase = Phase::Trailers;
        } else {
            self.phase = Phase::ChunkData;
        }
    }

    fn body_bytes<'a>(&mut self, bytes: &'a [u8], max_body: u64, sink: &mut impl FrameSink<'a>) {
        if bytes.is_empty() {
            return;
        }
        let offset = self.body_len;
        self.body_len += bytes.len() as u64;
        if self.body_captured < max_body {
            let keep = (max_body - self.body_captured).min(bytes.len() as u64) as usize;
            sink.body(self.msg_seq, offset, &bytes[..keep]);
            self.body_captured += keep as u64;
            if keep < bytes.len() {
                self.flags |= msg_flags::BODY_TRUNCATED;
            }
        } else {
            self.flags |= msg_flags::BODY_TRUNCATED;
        }
    }

    /// The message's counts so far, with `flags`.
    fn counts(&self, flags: u16) -> MsgEnd {
        MsgEnd {
            dir: Direction::from(self.role as u8),
            flags,
            msg_seq: self.msg_seq,
            head_len: self.head_len,
            body_len: self.body_len,
            wire_len: self.wire_len,
            start_wall_ns: self.start.wall_ns,
            start_mono_ns: self.start.mono_ns,
            status: self.status,
        }
    }

    fn finish<'a>(&mut self, extra_flags: u16, sink: &mut impl FrameSink<'a>) {
        let end = self.counts(self.flags | extra_flags);
        sink.end(&end);
        self.msg_seq = self.msg_seq.wrapping_add(1);
        self.phase = Phase::Idle;
    }

    fn fail<'a>(&mut self, sink: &mut impl FrameSink<'a>) -> Verdict {
        self.finish(msg_flags::MALFORMED | msg_flags::INCOMPLETE, sink);
        self.phase = Phase::Stopped;
        Verdict::Malformed
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

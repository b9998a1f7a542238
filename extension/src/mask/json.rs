//! JSON bodies (and JSON lines, and JSON held in JSON strings such as an API Gateway
//! event's `body`): values of sensitive keys become `"****"`.
//!
//! Why a rewriting scanner instead of parse-and-reserialise: captured bodies are often
//! *prefixes* (cut at `TAPLINE_MAX_BODY`), which no JSON parser accepts, and
//! re-serialising a complete document would reorder keys and change formatting. The
//! scanner keeps every byte except the values it masks, is exact on valid JSON (the unit
//! tests check it against a full `serde_json` parse) and tolerant on prefixes: a value
//! of a sensitive key that the cut left unfinished — half a string, half a number, an
//! unclosed object — is masked all the same, so no prefix of a secret survives either.

use std::ops::Range;

use super::form::looks_like_form;
use super::rules::{is_pair_name, is_pair_value, Masker};

/// How deep JSON held in JSON strings (an API Gateway event's `body`) is followed.
const MAX_NESTED_DEPTH: u32 = 4;

impl Masker {
    /// Masks the values of sensitive keys in JSON text — a whole document, several
    /// (JSON lines), or a prefix cut anywhere. `None` if nothing changed.
    pub fn mask_json(&self, input: &[u8]) -> Option<Vec<u8>> {
        self.mask_json_depth(input, 0)
    }

    fn mask_json_depth(&self, input: &[u8], depth: u32) -> Option<Vec<u8>> {
        let mut scan = JsonScan {
            masker: self,
            input,
            out: Vec::with_capacity(input.len()),
            pos: 0,
            stack: Vec::new(),
            changed: false,
            depth,
            graphql_secret_vars: self.graphql_secret_variables_in_json(input),
            pair_values: Vec::new(),
            to_mask: Vec::new(),
        };
        scan.run();
        scan.finish()
    }

    /// A JSON string's decoded text that itself holds JSON or a form: masked, or `None`.
    fn mask_embedded(&self, text: &str, depth: u32) -> Option<String> {
        if depth >= MAX_NESTED_DEPTH {
            return None;
        }
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let m = self.mask_json_depth(text.as_bytes(), depth + 1)?;
            Some(String::from_utf8_lossy(&m).into_owned())
        } else if looks_like_form(text) {
            self.mask_pairs(text, '&')
        } else if let Some((base, query)) = url_with_query(text) {
            // A URL or path with a query string (an echoed request, a callback, a
            // presigned link): its parameters are masked as a request's are.
            let masked = self.mask_pairs(query, '&')?;
            Some(format!("{base}?{masked}"))
        } else {
            None
        }
    }
}

/// `text` split at its `?` when it is one URL or path with a query (no whitespace, the
/// part before the `?` a path or an absolute URL).
fn url_with_query(text: &str) -> Option<(&str, &str)> {
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let (base, query) = text.split_once('?')?;
    let url_like = base.starts_with('/') || base.contains("://");
    (url_like && query.contains('=')).then_some((base, query))
}

pub(super) fn looks_like_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// What a member's key says about its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    /// The key rule matches the key (or it names a GraphQL variable passed to a
    /// sensitive argument): the value is masked whole.
    Secret,
    /// The name of a name/value pair (`name`, `ParameterKey`, ...): its string value is
    /// matched by the key rule.
    PairName,
    /// The value of a name/value pair (`value`, `ParameterValue`, ...).
    PairValue,
    /// `query`: a GraphQL operation text when it is a string.
    GraphqlQuery,
    Plain,
}

/// Where the scanner stands inside an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ObjState {
    Key,
    /// After a key.
    Colon(Member),
    /// Expecting a value.
    Value(Member),
    CommaOrEnd,
}

#[derive(Clone, Copy, Debug)]
enum Frame {
    /// An object; `pair_secret`: a name member of it named a secret, so its value member
    /// is masked.
    Object {
        state: ObjState,
        pair_secret: bool,
    },
    Array,
}

/// The tolerant JSON rewriter: copies `input` to `out`, replacing values of sensitive
/// keys with `"****"`. Never fails: bytes it cannot place are copied as they are.
struct JsonScan<'a> {
    masker: &'a Masker,
    input: &'a [u8],
    out: Vec<u8>,
    pos: usize,
    stack: Vec<Frame>,
    changed: bool,
    depth: u32,
    /// GraphQL variables passed to sensitive arguments (keys masked like sensitive keys).
    graphql_secret_vars: Vec<String>,
    /// Value members written before their pair's name was seen: (the depth of their
    /// object, their range in `out`). Masked if a name member of the same object turns
    /// out sensitive, or if the input ends before their object does (a cut body).
    pair_values: Vec<(usize, Range<usize>)>,
    /// Ranges of `out` to become `"****"` at the end.
    to_mask: Vec<Range<usize>>,
}

impl JsonScan<'_> {
    fn run(&mut self) {
        while self.pos < self.input.len() {
            let c = self.input[self.pos];
            if c.is_ascii_whitespace() {
                self.copy_to(self.pos + 1);
                continue;
            }
            match self.stack.last().copied() {
                Some(Frame::Object {
                    state: ObjState::Key,
                    ..
                }) if c == b'"' => {
                    let (end, key) = scan_string(self.input, self.pos);
                    let member = self.member(&key);
                    self.copy_to(end);
                    self.set_top(ObjState::Colon(member));
                }
                Some(Frame::Object {
                    state: ObjState::Colon(member),
                    ..
                }) if c == b':' => {
                    self.copy_to(self.pos + 1);
                    self.set_top(ObjState::Value(member));
                }
                Some(Frame::Object {
                    state: ObjState::Value(member),
                    pair_secret,
                }) if !matches!(c, b',' | b'}' | b']') => {
                    let secret =
                        member == Member::Secret || (member == Member::PairValue && pair_secret);
                    match member {
                        _ if secret => self.masked_value(),
                        // Deeper than that, a pair value is read as any value (a value
                        // nested in values, in values... must not grow the stack).
                        Member::PairValue if self.depth < MAX_NESTED_DEPTH => self.pair_value(),
                        Member::PairName if c == b'"' => self.pair_name(),
                        Member::GraphqlQuery if c == b'"' => self.graphql_query(),
                        _ if is_value_start(c) => self.value(c),
                        _ => self.copy_to(self.pos + 1),
                    }
                }
                Some(Frame::Array) | None if is_value_start(c) => {
                    self.value(c);
                }
                Some(Frame::Object {
                    state: ObjState::CommaOrEnd,
                    ..
                }) if c == b',' => {
                    self.copy_to(self.pos + 1);
                    self.set_top(ObjState::Key);
                }
                _ if c == b'}' || c == b']' => {
                    self.copy_to(self.pos + 1);
                    // Value members of this object whose pair named no secret stay.
                    let depth = self.stack.len();
                    self.pair_values.retain(|(d, _)| *d != depth);
                    self.stack.pop();
                    self.after_value();
                }
                _ => {
                    // ',' in arrays, stray bytes: copied as they are.
                    self.copy_to(self.pos + 1);
                }
            }
        }
    }

    fn member(&self, key: &str) -> Member {
        if self.masker.is_sensitive_key(key) || self.graphql_secret_vars.iter().any(|v| v == key) {
            Member::Secret
        } else if is_pair_name(key) {
            Member::PairName
        } else if is_pair_value(key) {
            Member::PairValue
        } else if key == "query" {
            Member::GraphqlQuery
        } else {
            Member::Plain
        }
    }

    /// The value of a sensitive key: `"****"` (a `null` stays).
    fn masked_value(&mut self) {
        let end = skip_value(self.input, self.pos);
        let raw = &self.input[self.pos..end];
        if raw == b"null" {
            self.out.extend_from_slice(raw);
        } else {
            self.out.extend_from_slice(b"\"****\"");
            self.changed |= raw != b"\"****\"";
        }
        self.pos = end;
        self.set_top(ObjState::CommaOrEnd);
    }

    /// A pair's value member before its name was seen: masked by its own keys, its
    /// place remembered in case the name comes later and names a secret.
    fn pair_value(&mut self) {
        let end = skip_value(self.input, self.pos).max(self.pos + 1);
        let raw = &self.input[self.pos..end];
        let start = self.out.len();
        match self.masker.mask_json_depth(raw, self.depth + 1) {
            Some(m) => {
                self.out.extend_from_slice(&m);
                self.changed = true;
            }
            None => self.out.extend_from_slice(raw),
        }
        if raw != b"null" {
            self.pair_values
                .push((self.stack.len(), start..self.out.len()));
        }
        self.pos = end;
        self.set_top(ObjState::CommaOrEnd);
    }

    /// A pair's name member: copied; if the key rule matches it, the pair's value is a
    /// secret, written already or still to come.
    fn pair_name(&mut self) {
        let (end, name) = scan_string(self.input, self.pos);
        self.copy_to(end);
        if self.masker.is_sensitive_key(name.trim()) {
            let depth = self.stack.len();
            if let Some(Frame::Object { pair_secret, .. }) = self.stack.last_mut() {
                *pair_secret = true;
            }
            let (now, later) = std::mem::take(&mut self.pair_values)
                .into_iter()
                .partition(|(d, _)| *d == depth);
            self.pair_values = later;
            self.to_mask.extend(now.into_iter().map(|(_, r)| r));
        }
        self.set_top(ObjState::CommaOrEnd);
    }

    /// A GraphQL operation text: its literal arguments masked by the key rule.
    fn graphql_query(&mut self) {
        let (end, text) = scan_string(self.input, self.pos);
        let masked = self
            .masker
            .mask_graphql_literals(&text)
            .or_else(|| self.masker.mask_embedded(&text, self.depth));
        match masked {
            Some(m) => {
                let quoted = serde_json::Value::String(m).to_string();
                self.out.extend_from_slice(quoted.as_bytes());
                self.pos = end;
                self.changed = true;
            }
            None => self.copy_to(end),
        }
        self.set_top(ObjState::CommaOrEnd);
    }

    /// The output, with the value members of secret pairs masked; `None` if nothing
    /// changed.
    fn finish(mut self) -> Option<Vec<u8>> {
        // Cut before a pair's name was seen: whether it named a secret is unknown, and
        // the value is masked as if it did.
        self.to_mask
            .extend(self.pair_values.drain(..).map(|(_, r)| r));
        if self.to_mask.is_empty() {
            return self.changed.then_some(self.out);
        }
        self.to_mask.sort_by_key(|r| r.start);
        let mut out = Vec::with_capacity(self.out.len());
        let mut at = 0;
        for r in &self.to_mask {
            if r.start < at {
                continue;
            }
            out.extend_from_slice(&self.out[at..r.start]);
            out.extend_from_slice(b"\"****\"");
            at = r.end;
        }
        out.extend_from_slice(&self.out[at..]);
        Some(out)
    }

    /// A value that is not itself masked: containers open a frame, strings may hold
    /// embedded JSON or a form, scalars are copied.
    fn value(&mut self, c: u8) {
        match c {
            b'{' => {
                self.copy_to(self.pos + 1);
                self.stack.push(Frame::Object {
                    state: ObjState::Key,
                    pair_secret: false,
                });
            }
            b'[' => {
                self.copy_to(self.pos + 1);
                self.stack.push(Frame::Array);
            }
            b'"' => {
                let (end, text) = scan_string(self.input, self.pos);
                match self.masker.mask_embedded(&text, self.depth) {
                    Some(masked) => {
                        let quoted = serde_json::Value::String(masked).to_string();
                        self.out.extend_from_slice(quoted.as_bytes());
                        self.pos = end;
                        self.changed = true;
                    }
                    None => self.copy_to(end),
                }
                self.after_value();
            }
            _ => {
                let end = skip_value(self.input, self.pos);
                self.copy_to(end.max(self.pos + 1));
                self.after_value();
            }
        }
    }

    fn after_value(&mut self) {
        if let Some(Frame::Object {
            state: ObjState::Value(_),
            ..
        }) = self.stack.last()
        {
            self.set_top(ObjState::CommaOrEnd);
        }
    }

    fn set_top(&mut self, new: ObjState) {
        if let Some(Frame::Object { state, .. }) = self.stack.last_mut() {
            *state = new;
        }
    }

    fn copy_to(&mut self, end: usize) {
        self.out.extend_from_slice(&self.input[self.pos..end]);
        self.pos = end;
    }
}

fn is_value_start(c: u8) -> bool {
    matches!(
        c,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    )
}

/// Scans the string starting at `input[start] == b'"'`. Returns the index after its
/// closing quote (or `input.len()` if the input ends first) and its decoded text
/// (what was there, for a cut string).
fn scan_string(input: &[u8], start: usize) -> (usize, String) {
    let s = crate::text::json_string(input, start + 1);
    (s.end, s.text)
}

/// The index just after the value starting at `input[start]`, or `input.len()` if the
/// input ends inside it. Containers are skipped to their matching close, strings
/// (with escapes) to their closing quote, scalars to the next delimiter.
fn skip_value(input: &[u8], start: usize) -> usize {
    match input[start] {
        b'"' => scan_string_end(input, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < input.len() {
                match input[i] {
                    b'"' => {
                        i = scan_string_end(input, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            input.len()
        }
        _ => input[start..]
            .iter()
            .position(|&c| matches!(c, b',' | b'}' | b']' | b':' | b'"') || c.is_ascii_whitespace())
            .map_or(input.len(), |n| start + n),
    }
}

fn scan_string_end(input: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < input.len() {
        match input[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    input.len()
}

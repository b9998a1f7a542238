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

use super::form::looks_like_form;
use super::rules::Masker;

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
        };
        scan.run();
        scan.changed.then_some(scan.out)
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
        } else {
            None
        }
    }
}

pub(super) fn looks_like_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// Where the scanner stands inside an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ObjState {
    Key,
    /// After a key; `true` if the key is sensitive.
    Colon(bool),
    /// Expecting a value; `true` if its key is sensitive.
    Value(bool),
    CommaOrEnd,
}

#[derive(Clone, Copy, Debug)]
enum Frame {
    Object(ObjState),
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
                Some(Frame::Object(ObjState::Key)) if c == b'"' => {
                    let (end, key) = scan_string(self.input, self.pos);
                    let sensitive = self.masker.is_sensitive_key(&key);
                    self.copy_to(end);
                    self.set_top(ObjState::Colon(sensitive));
                }
                Some(Frame::Object(ObjState::Colon(sensitive))) if c == b':' => {
                    self.copy_to(self.pos + 1);
                    self.set_top(ObjState::Value(sensitive));
                }
                Some(Frame::Object(ObjState::Value(true))) if !matches!(c, b',' | b'}' | b']') => {
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
                Some(Frame::Object(ObjState::Value(false))) | Some(Frame::Array) | None
                    if is_value_start(c) =>
                {
                    self.value(c);
                }
                Some(Frame::Object(ObjState::CommaOrEnd)) if c == b',' => {
                    self.copy_to(self.pos + 1);
                    self.set_top(ObjState::Key);
                }
                _ if c == b'}' || c == b']' => {
                    self.copy_to(self.pos + 1);
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

    /// A value that is not itself masked: containers open a frame, strings may hold
    /// embedded JSON or a form, scalars are copied.
    fn value(&mut self, c: u8) {
        match c {
            b'{' => {
                self.copy_to(self.pos + 1);
                self.stack.push(Frame::Object(ObjState::Key));
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
        if let Some(Frame::Object(ObjState::Value(_))) = self.stack.last() {
            self.set_top(ObjState::CommaOrEnd);
        }
    }

    fn set_top(&mut self, state: ObjState) {
        if let Some(top) = self.stack.last_mut() {
            *top = Frame::Object(state);
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

//! Secrets out before anything leaves the process: every report (table, JSON, HAR) and
//! every export (OTLP) sees an [`Exchange`] only after [`Masker::mask`] ran on it.
//!
//! Why a rewriting scanner instead of parse-and-reserialise for JSON bodies: captured
//! bodies are often *prefixes* (cut at `TAPLINE_MAX_BODY`), which no JSON parser accepts,
//! and re-serialising a complete document would reorder keys and change formatting. The
//! scanner in [`Masker::mask_json`] keeps every byte except the values it masks, is exact
//! on valid JSON (the unit tests check it against a full `serde_json` parse) and tolerant
//! on prefixes: a value of a sensitive key that the cut left unfinished — half a string,
//! half a number, an unclosed object — is masked all the same, so no prefix of a secret
//! survives either.
//!
//! Invariant: masking only ever replaces values with [`MASK`]; it never adds captured data.

use regex::Regex;

use crate::exchange::{Body, Exchange};

/// What a masked value becomes.
pub const MASK: &str = "****";

/// The default key pattern (`TAPLINE_MASK_REGEX` replaces it): case-insensitive, matched
/// anywhere in a header name, query/form parameter name or JSON key.
pub const DEFAULT_KEY_PATTERN: &str =
    "(?i)pass|secret|token|key|credential|auth|session|signature|cookie";

/// The default `TAPLINE_SCRUB_DOMAINS`.
pub const DEFAULT_SCRUB_DOMAINS: &str = "secretsmanager|ssm|kms|sts";

/// Headers masked whatever the key pattern says (lower-case).
const ALWAYS_MASKED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
    "x-api-key",
];

/// Query and form parameters masked whatever the key pattern says (compared
/// case-insensitively).
const ALWAYS_MASKED_PARAMS: &[&str] = &[
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "awsaccesskeyid",
    "signature",
    "sig",
];

/// Headers whose values are URLs: their query and userinfo are masked like the request's.
const URL_HEADERS: &[&str] = &["referer", "location", "content-location"];

/// How deep JSON held in JSON strings (an API Gateway event's `body`) is followed.
const MAX_NESTED_DEPTH: u32 = 4;

/// Errors building a [`Masker`].
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("TAPLINE_MASK_REGEX is not a valid regular expression: {0}")]
    Pattern(#[from] regex::Error),
}

/// Masks secrets in exchanges: header values, URL query parameters and userinfo, JSON
/// and form bodies; and scrubs exchanges with secret-holding services entirely.
#[derive(Clone, Debug)]
pub struct Masker {
    key: Regex,
    scrub_domains: Vec<String>,
}

impl Masker {
    /// `pattern` matches sensitive key names (a regex, searched, not anchored; add
    /// `(?i)` for case-insensitivity). `scrub_domains` are host fragments: an exchange
    /// whose host contains one of them on a label boundary (`sts` matches
    /// `sts.amazonaws.com` and `sts-fips.us-east-1.amazonaws.com`, not `posts.example`)
    /// keeps no headers, query or bodies.
    pub fn new<S: AsRef<str>>(pattern: &str, scrub_domains: &[S]) -> Result<Self, MaskError> {
        Ok(Masker {
            key: Regex::new(pattern)?,
            scrub_domains: scrub_domains
                .iter()
                .map(|d| d.as_ref().trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
        })
    }

    /// From `TAPLINE_MASK_REGEX` and `TAPLINE_SCRUB_DOMAINS` (`|`- or `,`-separated; set
    /// but empty: scrub nothing).
    pub fn from_env() -> Result<Self, MaskError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Masker::from_env`], reading variables through `lookup` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MaskError> {
        let pattern = lookup("TAPLINE_MASK_REGEX")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_KEY_PATTERN.to_string());
        let domains =
            lookup("TAPLINE_SCRUB_DOMAINS").unwrap_or_else(|| DEFAULT_SCRUB_DOMAINS.to_string());
        let domains: Vec<&str> = domains.split(['|', ',']).collect();
        Self::new(&pattern, &domains)
    }

    /// Does this key name (header, parameter, JSON key) hold a secret?
    pub fn is_sensitive_key(&self, name: &str) -> bool {
        self.key.is_match(name)
    }

    fn is_sensitive_param(&self, name: &str) -> bool {
        ALWAYS_MASKED_PARAMS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
            || self.is_sensitive_key(name)
    }

    /// Is `host` one whose exchanges are scrubbed?
    pub fn is_scrubbed_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.scrub_domains.iter().any(|d| {
            host.match_indices(d.as_str()).any(|(at, m)| {
                let before = host[..at].chars().next_back();
                let after = host[at + m.len()..].chars().next();
                matches!(before, None | Some('.'))
                    && matches!(after, None | Some('.') | Some('-') | Some(':'))
            })
        })
    }

    /// Masks every exchange of a batch, in place.
    pub fn mask_all(&self, exchanges: &mut [Exchange]) {
        for ex in exchanges {
            self.mask(ex);
        }
    }

    /// Masks everything in `ex` that can hold a secret, in place.
    pub fn mask(&self, ex: &mut Exchange) {
        // gRPC: bodies become decoded messages (JSON text) before anything is masked.
        crate::grpc::recognise(ex);
        // A secret-holding service is scrubbed by its host name, or — for local and VPC
        // endpoints — by what the request was recognised as.
        let scrub = [ex.host.as_deref(), ex.sni.as_deref()]
            .into_iter()
            .flatten()
            .any(|h| self.is_scrubbed_host(h))
            || ex.aws.as_ref().is_some_and(|a| {
                let name = a.service.signing_name();
                self.scrub_domains.iter().any(|d| d == name)
            });
        if let Some(call) = &mut ex.aws {
            for (_, value) in &mut call.resource {
                if let Some(masked) = self.mask_url(value) {
                    *value = masked;
                }
            }
        }
        if scrub {
            scrub_exchange(ex);
        }
        if let Some(host) = &mut ex.host {
            // A Host header never carries userinfo, but a host taken from an absolute URL
            // might: keep only what follows the last '@'.
            if let Some(at) = host.rfind('@') {
                *host = host[at + 1..].to_string();
            }
        }
        if let Some(path) = &mut ex.path {
            if let Some(masked) = self.mask_url(path) {
                *path = masked;
            }
        }
        if let Some(query) = &mut ex.query {
            if let Some(masked) = self.mask_pairs(query, '&') {
                *query = masked;
            }
        }
        for (name, value) in ex
            .request_headers
            .iter_mut()
            .chain(ex.response_headers.iter_mut())
            .chain(ex.response_trailers.iter_mut())
        {
            if let Some(masked) = self.mask_header(name, value) {
                *value = masked;
            }
        }
        // Value shapes (credential-looking values whatever their key): mask_shapes.rs.
        crate::mask_shapes::mask_exchange(ex);
        let req_type = header_value(&ex.request_headers, "content-type");
        let resp_type = header_value(&ex.response_headers, "content-type");
        if let Some(body) = &mut ex.request_body {
            decode_body(body, header_value(&ex.request_headers, "content-encoding"));
            self.mask_body(body, req_type.as_deref());
        }
        if let Some(body) = &mut ex.response_body {
            decode_body(body, header_value(&ex.response_headers, "content-encoding"));
            self.mask_body(body, resp_type.as_deref());
        }
        ex.truncated |= [&ex.request_body, &ex.response_body]
            .into_iter()
            .flatten()
            .any(|b| b.truncated);
    }

    /// The masked value of one header, or `None` if it stays as is.
    pub fn mask_header(&self, name: &str, value: &str) -> Option<String> {
        let lname = name.to_ascii_lowercase();
        let masked = match lname.as_str() {
            "authorization" | "proxy-authorization" => mask_authorization(value),
            "cookie" => mask_cookie(value),
            "set-cookie" => mask_set_cookie(value),
            n if URL_HEADERS.contains(&n) => return self.mask_url(value),
            n if ALWAYS_MASKED_HEADERS.contains(&n) || self.is_sensitive_key(name) => {
                MASK.to_string()
            }
            _ => return None,
        };
        (masked != value).then_some(masked)
    }

    /// Masks the userinfo, sensitive query parameters and sensitive path parameters
    /// (`;jsessionid=...`) of a URL or request target. `None` if nothing changed.
    pub fn mask_url(&self, url: &str) -> Option<String> {
        let (before_frag, frag) = match url.find('#') {
            Some(i) => url.split_at(i),
            None => (url, ""),
        };
        let (before_query, query) = match before_frag.find('?') {
            Some(i) => (&before_frag[..i], Some(&before_frag[i + 1..])),
            None => (before_frag, None),
        };
        let mut out = String::with_capacity(url.len());
        // userinfo: only in an absolute URL, between "://" and the first '/'.
        let rest = match before_query.find("://") {
            Some(i) => {
                let authority_start = i + 3;
                let authority_end = before_query[authority_start..]
                    .find('/')
                    .map_or(before_query.len(), |j| authority_start + j);
                let authority = &before_query[authority_start..authority_end];
                out.push_str(&before_query[..authority_start]);
                match authority.rfind('@') {
                    Some(at) => {
                        out.push_str(MASK);
                        out.push_str(&authority[at..]);
                    }
                    None => out.push_str(authority),
                }
                &before_query[authority_end..]
            }
            None => before_query,
        };
        // path parameters: `/a;jsessionid=XYZ/b`
        for (i, segment) in rest.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            let mut parts = segment.split(';');
            out.push_str(parts.next().unwrap_or(""));
            for param in parts {
                out.push(';');
                match param.split_once('=') {
                    Some((k, _)) if self.is_sensitive_param(&percent_decode(k, false)) => {
                        out.push_str(k);
                        out.push('=');
                        out.push_str(MASK);
                    }
                    _ => out.push_str(param),
                }
            }
        }
        if let Some(q) = query {
            out.push('?');
            match self.mask_pairs(q, '&') {
                Some(m) => out.push_str(&m),
                None => out.push_str(q),
            }
        }
        out.push_str(frag);
        (out != url).then_some(out)
    }

    /// Masks the values of sensitive `name=value` pairs separated by `sep` (a query
    /// string, a form body). Names are compared after percent-decoding. `None` if
    /// nothing changed.
    pub fn mask_pairs(&self, s: &str, sep: char) -> Option<String> {
        let mut changed = false;
        let mut out = String::with_capacity(s.len());
        for (i, pair) in s.split(sep).enumerate() {
            if i > 0 {
                out.push(sep);
            }
            match pair.split_once('=') {
                Some((k, v)) if self.is_sensitive_param(percent_decode(k, true).trim()) => {
                    out.push_str(k);
                    out.push('=');
                    out.push_str(MASK);
                    changed |= v != MASK;
                }
                _ => out.push_str(pair),
            }
        }
        changed.then_some(out)
    }

    /// Masks a captured body according to its content type, in place.
    pub fn mask_body(&self, body: &mut Body, content_type: Option<&str>) {
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let masked = if ct.contains("x-www-form-urlencoded") {
            self.mask_form_bytes(&body.bytes)
        } else if ct.contains("json") || looks_like_json(&body.bytes) {
            self.mask_json(&body.bytes)
        } else if ct.contains("xml") || looks_like_xml(&body.bytes) {
            self.mask_xml(&body.bytes)
        } else if ct.is_empty() || ct.starts_with("text/plain") {
            match std::str::from_utf8(&body.bytes) {
                Ok(s) if looks_like_form(s) => self.mask_pairs(s, '&').map(String::into_bytes),
                _ => None,
            }
        } else {
            None
        };
        if let Some(m) = masked {
            body.bytes = m;
        }
        // Every body format, then its values by their shape.
        if let Some(m) = crate::mask_shapes::mask_bytes(&body.bytes) {
            body.bytes = m;
        }
    }

    /// Masks XML (AWS query-protocol responses, SOAP, ...): the text of every element
    /// whose local name is sensitive — and of everything inside it, as JSON masks a
    /// sensitive key's whole value (`<Credentials>` holds `<SecretAccessKey>`) — and the
    /// values of sensitive attributes. Byte for byte otherwise; a document cut anywhere
    /// is masked as far as it goes. `None` if nothing changed.
    pub fn mask_xml(&self, input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len());
        let mut changed = false;
        // Open elements: is each one sensitive (itself or by an ancestor)?
        let mut open: Vec<bool> = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let inside_secret = open.last().copied().unwrap_or(false);
            if input[i] != b'<' {
                let end = memchr_from(input, i, b'<');
                if inside_secret && input[i..end].iter().any(|b| !b.is_ascii_whitespace()) {
                    out.extend_from_slice(MASK.as_bytes());
                    changed = true;
                } else {
                    out.extend_from_slice(&input[i..end]);
                }
                i = end;
                continue;
            }
            let rest = &input[i..];
            let skip_to = |pat: &[u8], from: usize| -> usize {
                rest[from..]
                    .windows(pat.len())
                    .position(|w| w == pat)
                    .map_or(rest.len(), |p| from + p + pat.len())
            };
            if rest.starts_with(b"<![CDATA[") {
                let end = skip_to(b"]]>", 9);
                if inside_secret {
                    out.extend_from_slice(MASK.as_bytes());
                    changed = true;
                } else {
                    out.extend_from_slice(&rest[..end]);
                }
                i += end;
            } else if rest.starts_with(b"<!--")
                || rest.starts_with(b"<?")
                || rest.starts_with(b"<!")
            {
                let end = if rest.starts_with(b"<!--") {
                    skip_to(b"-->", 4)
                } else {
                    skip_to(b">", 2)
                };
                out.extend_from_slice(&rest[..end]);
                i += end;
            } else if rest.starts_with(b"</") {
                let end = skip_to(b">", 2);
                out.extend_from_slice(&rest[..end]);
                open.pop();
                i += end;
            } else {
                let (end, self_closing, tag_changed) = self.mask_xml_tag(rest, &mut out);
                changed |= tag_changed;
                let name_end = rest[1..]
                    .iter()
                    .position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')
                    .map_or(rest.len(), |p| p + 1);
                let name = String::from_utf8_lossy(&rest[1..name_end]);
                let local = name.rsplit(':').next().unwrap_or("");
                if !self_closing {
                    // Operation envelopes (`CreateAccessKeyResponse`, `AssumeRoleResult`:
                    // AWS query protocol) hold the whole answer: their own name does not
                    // make it secret; what is inside is judged by its own names.
                    let envelope = ["response", "result"]
                        .iter()
                        .any(|e| local.to_ascii_lowercase().ends_with(e));
                    open.push(inside_secret || (!envelope && self.is_sensitive_param(local)));
                }
                i += end;
            }
        }
        changed.then_some(out)
    }

    /// Copies the start tag at the front of `tag` into `out`, masking the values of
    /// sensitive attributes. Returns (its length, self-closing, changed).
    fn mask_xml_tag(&self, tag: &[u8], out: &mut Vec<u8>) -> (usize, bool, bool) {
        let n = tag.len();
        let is_space = |b: u8| b.is_ascii_whitespace();
        let mut changed = false;
        // `<` and the element name.
        let mut i = 1;
        while i < n && !is_space(tag[i]) && tag[i] != b'/' && tag[i] != b'>' {
            i += 1;
        }
        out.extend_from_slice(&tag[..i]);
        while i < n {
            match tag[i] {
                b'>' => {
                    out.push(b'>');
                    return (i + 1, tag[i - 1] == b'/', changed);
                }
                b if is_space(b) || b == b'/' => {
                    out.push(b);
                    i += 1;
                }
                _ => {
                    // An attribute: name, optional `= value` (quoted or not).
                    let name_start = i;
                    while i < n && !is_space(tag[i]) && !matches!(tag[i], b'=' | b'>' | b'/') {
                        i += 1;
                    }
                    let name = String::from_utf8_lossy(&tag[name_start..i]).into_owned();
                    let local = name.rsplit(':').next().unwrap_or("");
                    let secret = !local.is_empty() && self.is_sensitive_param(local);
                    out.extend_from_slice(&tag[name_start..i]);
                    let mut j = i;
                    while j < n && is_space(tag[j]) {
                        j += 1;
                    }
                    if j >= n || tag[j] != b'=' {
                        continue;
                    }
                    j += 1;
                    while j < n && is_space(tag[j]) {
                        j += 1;
                    }
                    out.extend_from_slice(&tag[i..j]);
                    let (value_start, value_end, next) = match tag.get(j) {
                        Some(&q) if q == b'"' || q == b'\'' => {
                            out.push(q);
                            let close = tag[j + 1..]
                                .iter()
                                .position(|&b| b == q)
                                .map_or(n, |p| j + 1 + p);
                            (j + 1, close, (close + 1).min(n))
                        }
                        _ => {
                            let end = tag[j..]
                                .iter()
                                .position(|&b| is_space(b) || b == b'>')
                                .map_or(n, |p| j + p);
                            (j, end, end)
                        }
                    };
                    if secret && value_end > value_start {
                        out.extend_from_slice(MASK.as_bytes());
                        changed = true;
                    } else {
                        out.extend_from_slice(&tag[value_start..value_end]);
                    }
                    out.extend_from_slice(&tag[value_end..next]);
                    i = next;
                }
            }
        }
        (n, false, changed)
    }

    fn mask_form_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let s = String::from_utf8_lossy(bytes);
        self.mask_pairs(&s, '&').map(String::into_bytes)
    }

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

/// Scrubbed exchanges keep method, path, status, sizes and timing only.
fn scrub_exchange(ex: &mut Exchange) {
    ex.request_headers.clear();
    ex.response_headers.clear();
    ex.response_trailers.clear();
    ex.query = None;
    for body in [&mut ex.request_body, &mut ex.response_body]
        .into_iter()
        .flatten()
    {
        if !body.bytes.is_empty() {
            body.bytes.clear();
        }
        if body.size > 0 {
            body.truncated = true;
            ex.truncated = true;
        }
    }
}

fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// Most bytes a coded body is decoded to (what is cut there is marked truncated).
const DECODED_MAX: usize = 1 << 20;

/// A body sent with a content coding is masked — and reported — decoded: masked as
/// coded bytes, every secret in it would leave unseen (and readable to anyone who
/// decodes it). gzip, deflate (zlib or raw) and br are decoded, a captured prefix as far
/// as it goes; a body in any other coding (zstd, compress, stacked codings) cannot be
/// inspected, so its bytes are not reported at all (sizes stay).
pub fn decode_body(body: &mut Body, coding: Option<String>) {
    let Some(coding) = coding else { return };
    let coding = coding.trim().to_ascii_lowercase();
    if coding.is_empty() || coding == "identity" || body.bytes.is_empty() || body.decoded.is_some()
    {
        return;
    }
    let raw = &body.bytes[..];
    let decoded = match coding.as_str() {
        "gzip" | "x-gzip" => inflate(flate2::read::MultiGzDecoder::new(raw)).map(|d| ("gzip", d)),
        "deflate" => inflate(flate2::read::ZlibDecoder::new(raw))
            .or_else(|| inflate(flate2::read::DeflateDecoder::new(raw)))
            .map(|d| ("deflate", d)),
        "br" => inflate(brotli_decompressor::Decompressor::new(raw, 16 << 10)).map(|d| ("br", d)),
        _ => None,
    };
    match decoded {
        Some((name, (bytes, complete))) => {
            body.bytes = bytes;
            body.truncated |= !complete;
            body.decoded = Some(name);
        }
        None => {
            body.bytes.clear();
            body.truncated = true;
        }
    }
}

/// Reads a decoder to its end, or to [`DECODED_MAX`], or to where its input was cut.
/// `(bytes, complete)`; `None` if it decoded nothing at all (not this coding).
fn inflate(mut r: impl std::io::Read) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Some((out, true)),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() >= DECODED_MAX {
                    out.truncate(DECODED_MAX);
                    return Some((out, false));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (!out.is_empty()).then_some((out, false)),
        }
    }
}

fn looks_like_xml(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    start.is_some_and(|s| {
        bytes[s] == b'<'
            && bytes
                .get(s + 1)
                .is_some_and(|&c| c == b'?' || c == b'!' || c.is_ascii_alphabetic())
    })
}

/// Index of the first `byte` at or after `from`, or the end.
fn memchr_from(input: &[u8], from: usize, byte: u8) -> usize {
    input[from..]
        .iter()
        .position(|&b| b == byte)
        .map_or(input.len(), |p| from + p)
}

fn looks_like_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// `a=b&c=d` with no whitespace: a form body or a query string.
fn looks_like_form(s: &str) -> bool {
    !s.is_empty()
        && s.contains('=')
        && !s
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'{')
}

/// `Bearer abc` → `Bearer ****`; SigV4 keeps the algorithm and `SignedHeaders`, never
/// the key id (in `Credential`) nor the signature.
fn mask_authorization(value: &str) -> String {
    let value = value.trim();
    let Some((scheme, rest)) = value.split_once(' ') else {
        return MASK.to_string();
    };
    if scheme.contains('=') {
        return MASK.to_string();
    }
    if scheme.starts_with("AWS4-") {
        let mut parts = vec![format!("{scheme} Credential={MASK}")];
        for p in rest.split(',') {
            if let Some(sh) = p.trim().strip_prefix("SignedHeaders=") {
                parts.push(format!("SignedHeaders={sh}"));
            }
        }
        parts.push(format!("Signature={MASK}"));
        return parts.join(", ");
    }
    format!("{scheme} {MASK}")
}

/// `a=1; b=2` → `a=****; b=****`: names are kept, values are not.
fn mask_cookie(value: &str) -> String {
    value
        .split(';')
        .map(|c| match c.split_once('=') {
            Some((k, _)) => format!("{k}={MASK}"),
            None => MASK.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// `id=abc; Path=/; HttpOnly` → `id=****; Path=/; HttpOnly`.
fn mask_set_cookie(value: &str) -> String {
    let (first, attrs) = match value.find(';') {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    let first = match first.split_once('=') {
        Some((k, _)) => format!("{k}={MASK}"),
        None => MASK.to_string(),
    };
    first + attrs
}

/// Percent-decodes `s` (and `+` as space when `plus_is_space`), lossily.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
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
    let mut out: Vec<u8> = Vec::new();
    let mut i = start + 1;
    while i < input.len() {
        match input[i] {
            b'"' => return (i + 1, String::from_utf8_lossy(&out).into_owned()),
            b'\\' => {
                let Some(&e) = input.get(i + 1) else {
                    i += 1;
                    continue;
                };
                i += 2;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let Some(hi) = hex4(input, i) else {
                            i = (i + 4).min(input.len());
                            continue;
                        };
                        i += 4;
                        let mut ch = None;
                        if (0xD800..0xDC00).contains(&hi)
                            && input.get(i) == Some(&b'\\')
                            && input.get(i + 1) == Some(&b'u')
                        {
                            if let Some(lo) = hex4(input, i + 2) {
                                if (0xDC00..0xE000).contains(&lo) {
                                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                    ch = char::from_u32(cp);
                                    i += 6;
                                }
                            }
                        }
                        let ch = ch.or_else(|| char::from_u32(hi)).unwrap_or('\u{FFFD}');
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    other => out.push(other),
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (input.len(), String::from_utf8_lossy(&out).into_owned())
}

fn hex4(input: &[u8], at: usize) -> Option<u32> {
    let digits = input.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc << 4 | u32::from(hex_val(d)?)))
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exchange::TlsKind;
    use serde_json::Value;

    fn masker() -> Masker {
        Masker::new(
            DEFAULT_KEY_PATTERN,
            &["secretsmanager", "ssm", "kms", "sts"],
        )
        .unwrap()
    }

    fn json(s: &str) -> String {
        let m = masker();
        match m.mask_json(s.as_bytes()) {
            Some(b) => String::from_utf8(b).unwrap(),
            None => s.to_string(),
        }
    }

    /// The oracle: mask a parsed document (sensitive key → "****", null stays null).
    fn mask_value(m: &Masker, v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if m.is_sensitive_key(k) && !v.is_null() {
                        *v = Value::String(MASK.into());
                    } else {
                        mask_value(m, v);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| mask_value(m, v)),
            _ => {}
        }
    }

    pub(crate) fn exchange() -> Exchange {
        Exchange {
            pid: 1,
            conn_id: 7,
            seq: 0,
            start_unix_ns: 1_700_000_000_000_000_000,
            duration_ns: 5_000_000,
            method: Some("POST".into()),
            scheme: "https",
            host: Some("api.example.com".into()),
            port: Some(443),
            path: Some("/v1/items".into()),
            query: None,
            http_version: Some("1.1".into()),
            status: Some(200),
            request_headers: vec![],
            response_headers: vec![],
            response_trailers: Vec::new(),
            pushed: false,
            request_body: None,
            response_body: None,
            request_wire_bytes: 100,
            response_wire_bytes: 200,
            truncated: false,
            peer: Some("127.0.0.1:443".parse().unwrap()),
            tls: TlsKind::OpenSsl,
            alpn: None,
            sni: Some("api.example.com".into()),
            error: None,
            aws: None,
            grpc: None,
        }
    }

    #[test]
    fn json_table() {
        let cases: &[(&str, &str)] = &[
            (r#"{"password":"hunter2"}"#, r#"{"password":"****"}"#),
            (
                r#"{"a":{"b":{"password":"x"}}}"#,
                r#"{"a":{"b":{"password":"****"}}}"#,
            ),
            (
                r#"[{"token": 12345}, {"ok": 1}]"#,
                r#"[{"token": "****"}, {"ok": 1}]"#,
            ),
            (
                r#"{"apiKey":true,"n":null}"#,
                r#"{"apiKey":"****","n":null}"#,
            ),
            (r#"{"secret":null}"#, r#"{"secret":null}"#),
            (
                r#"{"auth":{"user":"u","pw":"p"},"x":2}"#,
                r#"{"auth":"****","x":2}"#,
            ),
            (
                r#"{"keys":["a","b"],"x":[1,2]}"#,
                r#"{"keys":"****","x":[1,2]}"#,
            ),
            // escaped quote in the secret, escaped quote in a harmless key
            (
                r#"{"pass":"a\"b\\","q\"":"v"}"#,
                r#"{"pass":"****","q\"":"v"}"#,
            ),
            // key spelled with a unicode escape
            (r#"{"pass\u0077ord":"x"}"#, r#"{"pass\u0077ord":"****"}"#),
            // unicode around
            (
                r#"{"naïve":"é","Session":"☃"}"#,
                r#"{"naïve":"é","Session":"****"}"#,
            ),
            // whitespace kept
            (
                "{ \"token\" :\n  \"abc\" , \"b\" : 1 }",
                "{ \"token\" :\n  \"****\" , \"b\" : 1 }",
            ),
            // a value that looks like a key does not confuse the state machine
            (
                r#"{"name":"password","v":"x"}"#,
                r#"{"name":"password","v":"x"}"#,
            ),
            (r#"["password","x"]"#, r#"["password","x"]"#),
            // JSON lines
            (
                "{\"token\":\"a\"}\n{\"token\":\"b\"}\n",
                "{\"token\":\"****\"}\n{\"token\":\"****\"}\n",
            ),
            // cut prefixes
            (r#"{"password":"hunt"#, r#"{"password":"****""#),
            (r#"{"password":12"#, r#"{"password":"****""#),
            (r#"{"password":tr"#, r#"{"password":"****""#),
            (r#"{"password":{"a":[1,{"#, r#"{"password":"****""#),
            (r#"{"password":"a\"b"#, r#"{"password":"****""#),
            (r#"{"password":"a\"#, r#"{"password":"****""#),
            (r#"{"password":"#, r#"{"password":"#),
            (r#"{"passw"#, r#"{"passw"#),
            (
                r#"{"a":[{"b":{"token":"abc"#,
                r#"{"a":[{"b":{"token":"****""#,
            ),
            // not quite JSON: single-quoted or bare values of sensitive keys
            (r#"{"token":'abc'}"#, r#"{"token":"****"}"#),
            // embedded JSON in a string (API Gateway event body)
            (
                r#"{"body":"{\"password\":\"p\",\"u\":1}"}"#,
                r#"{"body":"{\"password\":\"****\",\"u\":1}"}"#,
            ),
            // embedded form in a string
            (
                r#"{"body":"user=a&password=b"}"#,
                r#"{"body":"user=a&password=****"}"#,
            ),
            // cut inside escapes: in a key, in a secret, in a \u sequence
            (r#"{"pass\"#, r#"{"pass\"#),
            (r#"{"password":"ab\u00"#, r#"{"password":"****""#),
            (r#"{"password":"\ud83d\ude0"#, r#"{"password":"****""#),
            (r#"{"a":"x","password""#, r#"{"a":"x","password""#),
            (
                r#"{"a":"x","password" : -"#,
                r#"{"a":"x","password" : "****""#,
            ),
            (r#"[[{"k":1},{"token":[1,2"#, r#"[[{"k":1},{"token":"****""#),
            // a sensitive key inside a masked object's harmless sibling stays harmless
            (
                r#"{"x":{"y":"password"},"z":"token"}"#,
                r#"{"x":{"y":"password"},"z":"token"}"#,
            ),
            ("not json at all", "not json at all"),
        ];
        for (input, want) in cases {
            assert_eq!(json(input), *want, "input: {input}");
        }
    }

    #[test]
    fn headers_table() {
        let m = masker();
        let cases: &[(&str, &str, &str)] = &[
            ("Authorization", "Bearer eyJhbGciOi.abc.def", "Bearer ****"),
            ("authorization", "Basic dXNlcjpwYXNz", "Basic ****"),
            ("Authorization", "rawtoken", "****"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
                "AWS4-HMAC-SHA256 Credential=****, SignedHeaders=host;x-amz-date, Signature=****",
            ),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg==", "Basic ****"),
            ("Cookie", "session=abc123; theme=dark", "session=****; theme=****"),
            ("Set-Cookie", "sid=xyz; Path=/; HttpOnly", "sid=****; Path=/; HttpOnly"),
            ("X-Amz-Security-Token", "FwoGZXIvYXdzE", "****"),
            ("X-Api-Key", "k-123", "****"),
            ("X-My-Secret-Thing", "v", "****"),
            ("X-Session-Id", "v", "****"),
            ("Referer", "https://u:p@x.example/a?token=t&b=1", "https://****@x.example/a?token=****&b=1"),
            ("Location", "/next?X-Amz-Signature=abc", "/next?X-Amz-Signature=****"),
            ("Content-Type", "application/json", "application/json"),
            ("Host", "example.com", "example.com"),
            ("X-Amz-Date", "20240101T000000Z", "20240101T000000Z"),
        ];
        for (name, value, want) in cases {
            let got = m
                .mask_header(name, value)
                .unwrap_or_else(|| value.to_string());
            assert_eq!(got, *want, "{name}: {value}");
        }
    }

    #[test]
    fn url_and_query_table() {
        let m = masker();
        let cases: &[(&str, &str)] = &[
            ("/a?api_key=123&x=1", "/a?api_key=****&x=1"),
            ("/a?x=1", "/a?x=1"),
            ("/s3/obj?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2024&X-Amz-Signature=ff&X-Amz-Security-Token=tt",
             "/s3/obj?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=****&X-Amz-Signature=****&X-Amz-Security-Token=****"),
            ("/o?AWSAccessKeyId=AKIA&Signature=s&Expires=1", "/o?AWSAccessKeyId=****&Signature=****&Expires=1"),
            ("/o?sig=abc&sign=1", "/o?sig=****&sign=1"),
            ("/o?api%5Fkey=abc", "/o?api%5Fkey=****"),
            ("/o?token", "/o?token"),
            ("http://user:pw@proxy.example:8080/p?q=1", "http://****@proxy.example:8080/p?q=1"),
            ("/cart;jsessionid=ABC123/x", "/cart;jsessionid=****/x"),
            ("/a#frag?token=1", "/a#frag?token=1"),
        ];
        for (input, want) in cases {
            assert_eq!(
                m.mask_url(input).unwrap_or_else(|| input.to_string()),
                *want,
                "{input}"
            );
        }
        assert_eq!(
            m.mask_pairs("a=1&Password=2&&=3", '&').unwrap(),
            "a=1&Password=****&&=3"
        );
        assert_eq!(m.mask_pairs("my+token=1", '&').unwrap(), "my+token=****");
    }

    #[test]
    fn exchange_all_fields() {
        let m = masker();
        let mut ex = exchange();
        ex.query = Some("api_key=SECRETQ&x=1".into());
        ex.request_headers = vec![
            ("Authorization".into(), "Bearer SECRETA".into()),
            ("Cookie".into(), "session=SECRETC".into()),
            (
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            ),
        ];
        ex.response_headers = vec![
            ("Set-Cookie".into(), "session=SECRETS; Secure".into()),
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
        ];
        ex.request_body = Some(Body {
            bytes: br#"{"a":{"b":{"password":"SECRETP"}},"c":"keep"}"#.to_vec(),
            size: 44,
            truncated: false,
            decoded: None,
        });
        ex.response_body = Some(Body {
            bytes: b"access_token=SECRETT&expires=3600".to_vec(),
            size: 34,
            truncated: false,
            decoded: None,
        });
        m.mask(&mut ex);
        let body =
            |b: &Option<Body>| String::from_utf8_lossy(&b.as_ref().unwrap().bytes).into_owned();
        let dump = format!(
            "{ex:?} {} {} {}",
            ex.url().unwrap(),
            body(&ex.request_body),
            body(&ex.response_body)
        );
        assert!(!dump.contains("SECRET"), "{dump}");
        assert!(dump.contains("keep") && dump.contains("expires=3600"));
        assert_eq!(
            ex.url().unwrap(),
            "https://api.example.com/v1/items?api_key=****&x=1"
        );
    }

    fn coded_exchange(coding: &str, bytes: Vec<u8>, truncated: bool) -> Exchange {
        let mut ex = exchange();
        ex.request_headers = vec![
            ("Content-Type".into(), "application/json".into()),
            ("Content-Encoding".into(), coding.into()),
        ];
        ex.request_body = Some(Body {
            size: bytes.len() as u64 + 100,
            bytes,
            truncated,
            decoded: None,
        });
        ex
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const LOGIN: &[u8] = br#"{"user":"ann","password":"hunter2-secret","n":1}"#;

    #[test]
    fn gzip_bodies_are_masked_and_reported_decoded() {
        let mut ex = coded_exchange("gzip", gzip(LOGIN), false);
        masker().mask(&mut ex);
        let b = ex.request_body.unwrap();
        assert_eq!(b.decoded, Some("gzip"));
        let text = String::from_utf8(b.bytes).unwrap();
        assert_eq!(text, r#"{"user":"ann","password":"****","n":1}"#);
        assert!(!b.truncated);
    }

    #[test]
    fn a_cut_gzip_body_is_decoded_as_far_as_it_goes_and_masked() {
        let long: Vec<u8> = [&LOGIN[..LOGIN.len() - 1], b",\"pad\":\""]
            .concat()
            .into_iter()
            .chain((0..20_000u32).map(|i| b'a' + (i * 7 % 26) as u8))
            .collect();
        let coded = gzip(&long);
        for cut in [coded.len() / 2, coded.len() - 9] {
            let mut ex = coded_exchange("gzip", coded[..cut].to_vec(), true);
            masker().mask(&mut ex);
            let b = ex.request_body.unwrap();
            let text = String::from_utf8_lossy(&b.bytes);
            assert!(!text.contains("hunter2"), "{text}");
            assert!(
                text.starts_with(r#"{"user":"ann","password":"****""#),
                "{text}"
            );
            assert!(b.truncated);
        }
    }

    #[test]
    fn deflate_and_br_bodies_are_decoded() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(LOGIN).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(LOGIN).unwrap();
        // {"user":"ann","password":"hunter2-br"}, brotli-compressed by node's zlib.
        let br: Vec<u8> = vec![
            139, 18, 128, 123, 34, 117, 115, 101, 114, 34, 58, 34, 97, 110, 110, 34, 44, 34, 112,
            97, 115, 115, 119, 111, 114, 100, 34, 58, 34, 104, 117, 110, 116, 101, 114, 50, 45, 98,
            114, 34, 125, 3,
        ];
        for (coding, bytes, name) in [
            ("deflate", z.finish().unwrap(), "deflate"),
            ("Deflate", raw.finish().unwrap(), "deflate"),
            ("br", br, "br"),
        ] {
            let mut ex = coded_exchange(coding, bytes, false);
            masker().mask(&mut ex);
            let b = ex.request_body.unwrap();
            assert_eq!(b.decoded, Some(name), "{coding}");
            let text = String::from_utf8(b.bytes).unwrap();
            assert!(text.contains(r#""password":"****""#), "{coding}: {text}");
            assert!(!text.contains("hunter2"), "{coding}: {text}");
        }
    }

    #[test]
    fn a_body_in_a_coding_tapline_cannot_read_is_not_reported() {
        for coding in ["zstd", "gzip, br", "compress"] {
            let mut ex = coded_exchange(coding, gzip(LOGIN), false);
            masker().mask(&mut ex);
            let b = ex.request_body.unwrap();
            assert!(b.bytes.is_empty(), "{coding}");
            assert!(b.truncated && ex.truncated, "{coding}");
            assert_eq!(b.size, gzip(LOGIN).len() as u64 + 100, "sizes stay");
        }
        // Not gzip at all although the header says so: nothing decodes, nothing shown.
        let mut ex = coded_exchange("gzip", LOGIN.to_vec(), false);
        masker().mask(&mut ex);
        assert!(ex.request_body.unwrap().bytes.is_empty());
    }

    const IAM_KEY: &str = r#"<?xml version="1.0"?>
<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <CreateAccessKeyResult>
    <AccessKey>
      <UserName>Bob</UserName>
      <AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>
      <Status>Active</Status>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
    </AccessKey>
  </CreateAccessKeyResult>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8e01234567</RequestId></ResponseMetadata>
</CreateAccessKeyResponse>"#;

    #[test]
    fn xml_table() {
        let m = masker();
        let cases: &[(&str, &str)] = &[
            ("<a><password>hunter2</password><b>x</b></a>", "<a><password>****</password><b>x</b></a>"),
            (
                "<Creds><SessionToken>tok</SessionToken><Expiration>2030</Expiration></Creds>",
                "<Creds><SessionToken>****</SessionToken><Expiration>2030</Expiration></Creds>",
            ),
            // a sensitive element's whole content, as JSON masks a whole object
            (
                "<auth><user>u</user><pwd>p</pwd></auth><n>1</n>",
                "<auth><user>****</user><pwd>****</pwd></auth><n>1</n>",
            ),
            // namespaces, attributes (quoted either way, spaced), CDATA, comments
            (
                "<s:Envelope><s:Body><ns:Token a='1'><![CDATA[x<y]]></ns:Token></s:Body></s:Envelope>",
                "<s:Envelope><s:Body><ns:Token a='1'>****</ns:Token></s:Body></s:Envelope>",
            ),
            (
                r#"<login user="ann" password = "hunter2" api_key='k1'/><x>ok</x>"#,
                r#"<login user="ann" password = "****" api_key='****'/><x>ok</x>"#,
            ),
            ("<!-- <password>c</password> --><v>1</v>", "<!-- <password>c</password> --><v>1</v>"),
            ("<password/><v>1</v>", "<password/><v>1</v>"),
            ("<Secret>\n  </Secret>", "<Secret>\n  </Secret>"),
            // cut prefixes
            ("<r><password>hunt", "<r><password>****"),
            (r#"<r x="1" token="abc"#, r#"<r x="1" token="****"#),
            ("<r><SecretAccessKey><![CDATA[wJal", "<r><SecretAccessKey>****"),
        ];
        for (input, want) in cases {
            let got = m
                .mask_xml(input.as_bytes())
                .map(|b| String::from_utf8(b).unwrap())
                .unwrap_or_else(|| input.to_string());
            assert_eq!(&got, want, "{input}");
        }
    }

    #[test]
    fn an_iam_access_key_response_keeps_its_request_id_and_loses_its_keys() {
        let m = masker();
        let mut b = Body {
            bytes: IAM_KEY.as_bytes().to_vec(),
            size: IAM_KEY.len() as u64,
            truncated: false,
            decoded: None,
        };
        m.mask_body(&mut b, Some("text/xml"));
        let text = String::from_utf8(b.bytes).unwrap();
        assert!(
            !text.contains("wJalrXUtnFEMI") && !text.contains("AKIAIOSFODNN7"),
            "{text}"
        );
        assert!(text.contains("<RequestId>7a62c49f-347e-4fc4-9331-6e8e01234567</RequestId>"));
        assert!(
            text.contains("<SecretAccessKey>****</SecretAccessKey>"),
            "{text}"
        );
        // Without a content type, XML is recognised by its shape.
        let mut b2 = Body {
            bytes: IAM_KEY.as_bytes().to_vec(),
            size: 0,
            truncated: false,
            decoded: None,
        };
        m.mask_body(&mut b2, None);
        assert_eq!(String::from_utf8(b2.bytes).unwrap(), text);
    }

    #[test]
    fn an_xml_secret_never_survives_a_cut_anywhere() {
        let m = masker();
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
        for cut in 0..=IAM_KEY.len() {
            let input = &IAM_KEY.as_bytes()[..cut];
            let out = m.mask_xml(input).unwrap_or_else(|| input.to_vec());
            let text = String::from_utf8_lossy(&out);
            // No run of 4 or more characters of the secret (a prefix of it would do).
            for w in secret.as_bytes().windows(4) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(!text.contains(w), "cut {cut}: {w} in {text}");
            }
        }
    }

    #[test]
    fn garbage_in_any_body_never_panics_the_masker() {
        // Fragments that steer the XML, JSON and form scanners into their corners,
        // glued at random and cut anywhere, under every content type and coding.
        const PIECES: &[&[u8]] = &[
            b"<",
            b">",
            b"</",
            b"/>",
            b"<?",
            b"?>",
            b"<!--",
            b"-->",
            b"<![CDATA[",
            b"]]>",
            b"<Token",
            b"<a:Secret",
            b" x=",
            b"'",
            b"\"",
            b"=",
            b" ",
            b"password",
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b",",
            b"\\",
            b"&",
            b"\x1f\x8b\x08",
            b"\xff",
            b"\x00",
        ];
        let m = masker();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let mut bytes = Vec::new();
            for _ in 0..(next() % 24) {
                bytes.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let ct = [
                "text/xml",
                "application/json",
                "application/x-www-form-urlencoded",
                "",
            ][(next() % 4) as usize];
            let coding = ["", "gzip", "deflate", "br", "zstd"][(next() % 5) as usize];
            let mut ex = coded_exchange(coding, bytes.clone(), next() % 2 == 0);
            ex.response_headers = vec![("Content-Type".into(), ct.into())];
            ex.response_body = Some(Body {
                size: bytes.len() as u64,
                bytes: bytes.clone(),
                truncated: false,
                decoded: None,
            });
            m.mask(&mut ex);
            let _ = m.mask_xml(&bytes);
            let _ = m.mask_json(&bytes);
        }
    }

    #[test]
    fn body_without_content_type() {
        let m = masker();
        let mut b = Body {
            bytes: br#" {"token":"x"}"#.to_vec(),
            size: 14,
            truncated: false,
            decoded: None,
        };
        m.mask_body(&mut b, None);
        assert_eq!(b.bytes, br#" {"token":"****"}"#);
        let mut b = Body {
            bytes: b"password=x&u=y".to_vec(),
            size: 14,
            truncated: false,
            decoded: None,
        };
        m.mask_body(&mut b, None);
        assert_eq!(b.bytes, b"password=****&u=y");
        let mut b = Body {
            bytes: b"plain password=x text".to_vec(),
            size: 21,
            truncated: false,
            decoded: None,
        };
        m.mask_body(&mut b, Some("text/html"));
        assert_eq!(b.bytes, b"plain password=x text");
    }

    #[test]
    fn scrubbed_hosts() {
        let m = masker();
        for (host, scrub) in [
            ("secretsmanager.us-east-1.amazonaws.com", true),
            ("ssm.eu-west-1.amazonaws.com", true),
            ("kms-fips.us-east-1.amazonaws.com", true),
            ("sts.amazonaws.com", true),
            ("STS.AMAZONAWS.COM:443", true),
            ("posts.example.com", false),
            ("s3.amazonaws.com", false),
            ("kmsx.example", false),
        ] {
            assert_eq!(m.is_scrubbed_host(host), scrub, "{host}");
        }
        let mut ex = exchange();
        ex.host = Some("sts.amazonaws.com".into());
        ex.query = Some("Action=GetCallerIdentity".into());
        ex.request_headers = vec![("X-Anything".into(), "v".into())];
        ex.response_headers = vec![("Content-Type".into(), "text/xml".into())];
        ex.response_body = Some(Body {
            bytes: b"<AccessKeyId>A</AccessKeyId>".to_vec(),
            size: 900,
            truncated: false,
            decoded: None,
        });
        m.mask(&mut ex);
        assert!(ex.request_headers.is_empty() && ex.response_headers.is_empty());
        assert_eq!(ex.query, None);
        let body = ex.response_body.as_ref().unwrap();
        assert!(body.bytes.is_empty() && body.size == 900 && body.truncated && ex.truncated);
        assert_eq!(
            (ex.method.as_deref(), ex.path.as_deref(), ex.status),
            (Some("POST"), Some("/v1/items"), Some(200))
        );
    }

    #[test]
    fn config_from_lookup() {
        let m = Masker::from_lookup(|k| match k {
            "TAPLINE_MASK_REGEX" => Some("^x-internal$".into()),
            "TAPLINE_SCRUB_DOMAINS" => Some("vault.example, db".into()),
            _ => None,
        })
        .unwrap();
        assert!(m.is_sensitive_key("x-internal") && !m.is_sensitive_key("password"));
        // the fixed lists stay in force when the pattern is replaced
        assert_eq!(
            m.mask_header("Authorization", "Bearer t").unwrap(),
            "Bearer ****"
        );
        assert_eq!(m.mask_url("/?sig=1").unwrap(), "/?sig=****");
        assert!(m.is_scrubbed_host("vault.example") && m.is_scrubbed_host("db.local"));
        assert!(!m.is_scrubbed_host("sts.amazonaws.com"));
        let none =
            Masker::from_lookup(|k| (k == "TAPLINE_SCRUB_DOMAINS").then(String::new)).unwrap();
        assert!(!none.is_scrubbed_host("sts.amazonaws.com"));
        assert!(none.is_sensitive_key("PassWord"));
        assert!(Masker::from_lookup(|k| (k == "TAPLINE_MASK_REGEX").then(|| "(".into())).is_err());
    }

    /// A splitmix64 for reproducible random documents.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len() as u64) as usize]
        }
    }

    const SENSITIVE_KEYS: &[&str] = &[
        "password",
        "api_key",
        "sessionToken",
        "Authorization",
        "client_secret",
    ];
    const PLAIN_KEYS: &[&str] = &[
        "name", "id", "items", "data", "value", "note", "a\"b", "ünï",
    ];

    /// Secrets use only characters that plain data never holds: Q X Z 7 8 9 ☃ and
    /// (as filler) quotes and backslashes.
    fn secret(rng: &mut Rng, depth: u32) -> Value {
        match rng.below(if depth > 2 { 2 } else { 4 }) {
            0 => {
                let n = 1 + rng.below(12);
                Value::String(
                    (0..n)
                        .map(|_| ["Q", "X", "Z", "\"", "\\", "☃"][rng.below(6) as usize])
                        .collect(),
                )
            }
            1 => Value::from(-(rng.below(1 << 40) as i64) - 1),
            2 => Value::Array(vec![secret(rng, depth + 1), secret(rng, depth + 1)]),
            _ => {
                let mut m = serde_json::Map::new();
                m.insert(rng.pick(PLAIN_KEYS).into(), secret(rng, depth + 1));
                Value::Object(m)
            }
        }
    }

    fn plain(rng: &mut Rng, depth: u32) -> Value {
        match rng.below(if depth > 3 { 3 } else { 5 }) {
            0 => Value::String(
                (0..rng.below(8))
                    .map(|_| ["a", "b", "{", "[", " ", "\"", ":", ","][rng.below(8) as usize])
                    .collect(),
            ),
            1 => Value::from(rng.below(60_000) as i64),
            2 => Value::Null,
            3 => Value::Array((0..rng.below(4)).map(|_| plain(rng, depth + 1)).collect()),
            _ => {
                let mut m = serde_json::Map::new();
                for _ in 0..rng.below(5) {
                    if rng.below(3) == 0 {
                        m.insert(rng.pick(SENSITIVE_KEYS).into(), secret(rng, depth + 1));
                    } else {
                        m.insert(rng.pick(PLAIN_KEYS).into(), plain(rng, depth + 1));
                    }
                }
                Value::Object(m)
            }
        }
    }

    fn leaks(out: &str) -> bool {
        // Plain data never holds these: secret strings are made of them, secret numbers
        // are negative, plain ones are not.
        out.contains(['Q', 'X', 'Z', '☃', '-'])
    }

    #[test]
    fn random_documents_cut_at_every_prefix_leak_nothing() {
        let m = masker();
        let mut rng = Rng(0x07A9_114E);
        let mut checked = 0;
        for _ in 0..300 {
            let mut doc = plain(&mut rng, 0);
            if !doc.is_object() {
                let mut w = serde_json::Map::new();
                w.insert("data".into(), doc);
                w.insert("password".into(), secret(&mut rng, 0));
                doc = Value::Object(w);
            }
            for text in [doc.to_string(), serde_json::to_string_pretty(&doc).unwrap()] {
                // complete: same answer as a full parse
                let masked = json(&text);
                let mut expect = doc.clone();
                mask_value(&m, &mut expect);
                let got: Value =
                    serde_json::from_str(&masked).unwrap_or_else(|e| panic!("{e}: {masked}"));
                assert_eq!(got, expect, "{text}");
                // every prefix (at byte boundaries, even inside a UTF-8 sequence)
                for cut in 0..=text.len() {
                    let out = match m.mask_json(&text.as_bytes()[..cut]) {
                        Some(b) => b,
                        None => text.as_bytes()[..cut].to_vec(),
                    };
                    let out = String::from_utf8_lossy(&out);
                    assert!(!leaks(&out), "cut {cut} of {text}\n -> {out}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000);
    }
}

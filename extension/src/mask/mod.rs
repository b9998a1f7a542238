//! Secrets out before anything leaves the process: every report (table, JSON, HAR) and
//! every export (OTLP) sees an [`Exchange`] only after [`Masker::mask`] ran on it.
//!
//! The stages, in order (each a file): scrubbing of secret-holding services (here), URLs
//! ([`url`]), headers ([`headers`]), value shapes in header/trailer values, path, query
//! and error ([`shapes`]), content-coding decode ([`coding`]), then one body masker per
//! body format — [`multipart`], [`form`], [`graphql`], [`json`], [`xml`], [`text`] —
//! chosen in one place, [`BodyFormat::of`] (a multipart part goes through it again, by
//! its own content type), and after it, whatever the format, the value shapes
//! ([`shapes`]). A new body format is a new file and one arm there. gRPC bodies arrive
//! here already decoded into JSON text (the pipeline's `RecogniseGrpc` stage runs before
//! this one).
//!
//! Name/value pairs (`{"name": "DB_PASSWORD", "value": ...}`, AWS
//! `ParameterKey`/`ParameterValue`, `<Name>`/`<Value>`, `Tags.member.1.Key=`/`.Value=`)
//! are one rule in three formats ([`rules::PAIR_NAMES`], [`rules::PAIR_VALUES`]): the
//! value member is masked when the key rule matches the name member's *value*.
//!
//! Invariant: masking only ever replaces values with [`MASK`] (and a binary file part of
//! a multipart body with its size); it never adds captured data.

mod coding;
mod form;
mod graphql;
mod headers;
mod json;
mod multipart;
mod rules;
pub(crate) mod shapes;
mod text;
mod url;
mod xml;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_formats;

use crate::exchange::{Body, Exchange};
use crate::text::header;
use coding::decode_body;
pub use rules::DEFAULT_KEY_PATTERN;
pub use rules::{MaskError, Masker};

impl Masker {
    /// Masks every exchange of a batch, in place.
    pub fn mask_all(&self, exchanges: &mut [Exchange]) {
        for ex in exchanges {
            self.mask(ex);
        }
    }

    /// Masks everything in `ex` that can hold a secret, in place.
    pub fn mask(&self, ex: &mut Exchange) {
        let scrub = self.is_scrubbed(ex);
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
        self.mask_target(ex);
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
        // Credential-looking values whatever their key.
        shapes::mask_exchange(ex);
        let request = (&ex.request_headers, &mut ex.request_body);
        let response = (&ex.response_headers, &mut ex.response_body);
        for (headers, body) in [request, response] {
            if let Some(body) = body {
                decode_body(body, header(headers, "content-encoding"));
                self.mask_body(body, header(headers, "content-type"));
            }
        }
        ex.truncated |= [&ex.request_body, &ex.response_body]
            .into_iter()
            .flatten()
            .any(|b| b.truncated);
    }

    /// A secret-holding service is scrubbed by its host name, or — for local and VPC
    /// endpoints — by what the request was recognised as.
    fn is_scrubbed(&self, ex: &Exchange) -> bool {
        self.scrub_all
            || [ex.host.as_deref(), ex.sni.as_deref()]
                .into_iter()
                .flatten()
                .any(|h| self.is_scrubbed_host(h))
            || ex.aws.as_ref().is_some_and(|a| {
                let name = a.service.signing_name();
                self.scrub_domains.iter().any(|d| d == name)
            })
    }

    /// The host, path and query of the request.
    fn mask_target(&self, ex: &mut Exchange) {
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
    }

    /// Masks a captured (already decoded) body according to its format, then its
    /// values by their shape (every format, and bodies of no known format), in place.
    pub fn mask_body(&self, body: &mut Body, content_type: Option<&str>) {
        if let Some(m) = self.mask_format(&body.bytes, content_type, 0) {
            body.bytes = m;
        }
        if let Some(m) = shapes::mask_bytes(&body.bytes) {
            body.bytes = m;
        }
    }

    /// The key rules of the body's format (`depth`: how deep in multipart parts);
    /// `None` if nothing changed.
    fn mask_format(&self, bytes: &[u8], content_type: Option<&str>, depth: u32) -> Option<Vec<u8>> {
        match BodyFormat::of(content_type, bytes)? {
            BodyFormat::Multipart => self.mask_multipart(bytes, content_type?, depth),
            BodyFormat::Form => self.mask_form(bytes),
            BodyFormat::Graphql => {
                let text = String::from_utf8_lossy(bytes);
                self.mask_graphql_literals(&text).map(String::into_bytes)
            }
            BodyFormat::Json => self.mask_json(bytes),
            BodyFormat::Xml => self.mask_xml(bytes),
            BodyFormat::Text => self.mask_text(bytes),
        }
    }
}

/// The body formats the masker reads. Each has its own file and masking function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFormat {
    /// `multipart/form-data`, `multipart/mixed` (any `multipart/*` with a boundary).
    Multipart,
    /// `application/x-www-form-urlencoded`, or plain text that is `a=b&c=d`.
    Form,
    /// `application/graphql`: an operation text (JSON GraphQL requests are [`Json`]).
    ///
    /// [`Json`]: BodyFormat::Json
    Graphql,
    Json,
    Xml,
    /// Any other body whose bytes are text: header-like lines and `key=value` pairs.
    Text,
}

impl BodyFormat {
    /// The one dispatch by content type: the declared type first, then — for JSON and
    /// XML — what the bytes look like; an untyped or `text/plain` body is masked as a
    /// form when it is one, any other body of text as text. `None`: a format nothing is
    /// masked in (binary).
    pub(crate) fn of(content_type: Option<&str>, bytes: &[u8]) -> Option<BodyFormat> {
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        if ct.starts_with("multipart/") {
            Some(BodyFormat::Multipart)
        } else if ct.contains("x-www-form-urlencoded") {
            Some(BodyFormat::Form)
        } else if ct.starts_with("application/graphql") {
            Some(BodyFormat::Graphql)
        } else if ct.contains("json") || json::looks_like_json(bytes) {
            Some(BodyFormat::Json)
        } else if ct.contains("xml") || xml::looks_like_xml(bytes) {
            Some(BodyFormat::Xml)
        } else if (ct.is_empty() || ct.starts_with("text/plain"))
            && std::str::from_utf8(bytes).is_ok_and(form::looks_like_form)
        {
            Some(BodyFormat::Form)
        } else if text::is_textual(bytes) {
            Some(BodyFormat::Text)
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

//! Reading named fields out of captured AWS request and response bodies: JSON (the
//! `awsJson` protocols), XML (the query protocol's responses, S3) and form bodies (the
//! query protocol's requests); the forms themselves are split by `crate::text`.
//!
//! Why not only `serde_json`: bodies are often prefixes cut at `TAPLINE_MAX_BODY`, which
//! no parser accepts. A complete document is parsed and walked; a prefix is scanned for
//! `"Key": "value"` pairs, which still finds the table name of a large `PutItem`.

use serde_json::Value;

/// A JSON body: parsed when complete, else the raw prefix.
pub(crate) enum JsonBody<'a> {
    Parsed(Value),
    Prefix(&'a str),
    None,
}

impl<'a> JsonBody<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let trimmed = bytes.trim_ascii_start();
        if !trimmed.starts_with(b"{") {
            return JsonBody::None;
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => JsonBody::Parsed(v),
            Err(_) => match std::str::from_utf8(bytes) {
                Ok(s) => JsonBody::Prefix(s),
                // Cut inside a multi-byte character: keep the valid part.
                Err(e) => JsonBody::Prefix(
                    std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
                ),
            },
        }
    }

    /// Strings at `path` (object keys; `*` walks an array). A prefix is scanned for the
    /// last key of the path anywhere in the document.
    pub(crate) fn strings(&self, path: &[&str]) -> Vec<String> {
        match self {
            JsonBody::Parsed(v) => {
                let mut out = Vec::new();
                walk(v, path, &mut out);
                out
            }
            JsonBody::Prefix(s) => path.last().map_or_else(Vec::new, |k| scan_json(s, k)),
            JsonBody::None => Vec::new(),
        }
    }

    /// The first string at `path`.
    pub(crate) fn string(&self, path: &[&str]) -> Option<String> {
        self.strings(path).into_iter().next()
    }

    /// The keys of the object at `path` (complete documents only).
    pub(crate) fn keys(&self, path: &[&str]) -> Vec<String> {
        let JsonBody::Parsed(root) = self else {
            return Vec::new();
        };
        let mut v = root;
        for k in path {
            match v.get(k) {
                Some(next) => v = next,
                None => return Vec::new(),
            }
        }
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn walk(v: &Value, path: &[&str], out: &mut Vec<String>) {
    match path.split_first() {
        None => {
            if let Some(s) = v.as_str() {
                out.push(s.to_string());
            }
        }
        Some((&"*", rest)) => {
            if let Some(a) = v.as_array() {
                for item in a {
                    walk(item, rest, out);
                }
            }
        }
        Some((k, rest)) => {
            if let Some(next) = v.get(*k) {
                walk(next, rest, out);
            }
        }
    }
}

/// Every `"key": "string"` in a (possibly cut) JSON text, unescaped; a value the cut
/// left unfinished is dropped.
pub(crate) fn scan_json(s: &str, key: &str) -> Vec<String> {
    let needle = format!("\"{key}\"");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = s[from..].find(&needle) {
        let after = from + at + needle.len();
        from = after;
        let rest = s[after..].trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix('"') else {
            continue;
        };
        if let Some(v) = json_string_body(rest) {
            out.push(v);
        }
    }
    out
}

/// Reads a JSON string's content up to its closing quote; `None` if it is cut.
fn json_string_body(s: &str) -> Option<String> {
    let j = crate::text::json_string(s.as_bytes(), 0);
    j.closed.then_some(j.text)
}

/// The text of every `<tag>...</tag>` element (no attributes, as AWS writes them),
/// with the five XML entities decoded.
pub(crate) fn xml_texts(body: &[u8], tag: &str) -> Vec<String> {
    let s = String::from_utf8_lossy(body);
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = s[from..].find(&open) {
        let start = from + at + open.len();
        let Some(len) = s[start..].find(&close) else {
            break;
        };
        out.push(xml_unescape(&s[start..start + len]));
        from = start + len + close.len();
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_complete_and_cut() {
        let full = br#"{"TableName":"orders","Item":{"TableName":{"S":"x"}},"Entries":[{"EventId":"a"},{"EventId":"b"}]}"#;
        let j = JsonBody::new(full);
        assert_eq!(j.string(&["TableName"]).as_deref(), Some("orders"));
        assert_eq!(j.strings(&["Entries", "*", "EventId"]), ["a", "b"]);
        let cut = &full[..60];
        let j = JsonBody::new(cut);
        assert!(matches!(j, JsonBody::Prefix(_)));
        assert_eq!(j.string(&["TableName"]).as_deref(), Some("orders"));
        assert_eq!(scan_json(r#"{"K": "a\"b\u0041", "K":"cu"#, "K"), ["a\"bA"]);
    }

    #[test]
    fn xml() {
        let x = b"<R><MessageId>m-1</MessageId><MessageId>a&amp;b</MessageId><RequestId>r</RequestId></R>";
        assert_eq!(xml_texts(x, "MessageId"), ["m-1", "a&b"]);
    }

    /// Regression: this reader's own unescaper turned a surrogate pair into U+FFFD.
    #[test]
    fn a_surrogate_pair_in_a_cut_document_is_one_character() {
        let cut = r#"{"TableName": "t\ud83d\ude00", "Item": {"#;
        assert_eq!(scan_json(cut, "TableName"), ["t\u{1F600}"]);
        assert_eq!(
            JsonBody::new(br#"{"QueueUrl":"q\ud83d\ude00"}"#)
                .string(&["QueueUrl"])
                .as_deref(),
            Some("q\u{1F600}")
        );
    }
}

//! GraphQL requests (`application/graphql`, or JSON with `query` and `variables`).
//!
//! Why: a GraphQL operation names its secrets in the operation text, not in the
//! variables — `mutation($v: String!) { login(password: $v) }` sends the password as
//! `{"variables": {"v": ...}}`, a name no key rule matches. A variable is therefore
//! sensitive when the key rule matches its own name (the JSON masker does that) *or* the
//! argument it is passed to; and literal arguments in the text (`login(password:
//! "...")`) are masked by the same rule. The operation text is read with patterns, not
//! parsed: it may be cut anywhere, and a string literal cut by the end of the capture is
//! masked as far as it goes.

use std::sync::OnceLock;

use regex::Regex;

use super::rules::{Masker, MASK};

/// `argument: $variable` (also `field: $v` inside input objects).
fn binding() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"([_A-Za-z][_0-9A-Za-z]*)\s*:\s*\$([_A-Za-z][_0-9A-Za-z]*)")
            .expect("graphql binding pattern")
    })
}

/// `argument: "literal"` / `argument: """block"""` / `argument: 123`; a string cut by
/// the end of the text (or by a dangling escape) runs to that end.
fn literal() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"([_A-Za-z][_0-9A-Za-z]*)\s*:\s*("""(?s:.*?)(?:"""|\z)|"(?:[^"\\]|\\.)*\\?(?:"|\z)|-?[0-9][0-9.eE+-]*)"#,
        )
        .expect("graphql literal pattern")
    })
}

/// Is the name at `start` a real name (not `$name`, not the tail of a longer word)?
fn name_starts(text: &str, start: usize) -> bool {
    !text[..start]
        .chars()
        .next_back()
        .is_some_and(|c| c == '$' || c == '_' || c.is_ascii_alphanumeric())
}

impl Masker {
    /// The variables of an operation text that are passed to a sensitive argument.
    pub(super) fn graphql_secret_variables(&self, operation: &str) -> Vec<String> {
        binding()
            .captures_iter(operation)
            .filter(|c| {
                let arg = &c[1];
                c.get(1).is_some_and(|m| name_starts(operation, m.start()))
                    && self.is_sensitive_key(arg)
            })
            .map(|c| c[2].to_string())
            .collect()
    }

    /// The operation text with the literal values of sensitive arguments masked; `None`
    /// if there is none.
    pub(super) fn mask_graphql_literals(&self, operation: &str) -> Option<String> {
        let mut out = String::with_capacity(operation.len());
        let mut at = 0;
        for c in literal().captures_iter(operation) {
            let (Some(name), Some(value)) = (c.get(1), c.get(2)) else {
                continue;
            };
            if !name_starts(operation, name.start()) || !self.is_sensitive_key(name.as_str()) {
                continue;
            }
            out.push_str(&operation[at..value.start()]);
            out.push('"');
            out.push_str(MASK);
            out.push('"');
            at = value.end();
        }
        if at == 0 {
            return None;
        }
        out.push_str(&operation[at..]);
        Some(out)
    }

    /// Every variable of a JSON GraphQL request (`{"query": ..., "variables": ...}`, or
    /// a batch of them) passed to a sensitive argument: the operation texts are the
    /// strings under `"query"` keys, found without parsing (the body may be cut).
    pub(super) fn graphql_secret_variables_in_json(&self, input: &[u8]) -> Vec<String> {
        let mut vars = Vec::new();
        let key = b"\"query\"";
        let mut from = 0;
        while let Some(p) = input[from..].windows(key.len()).position(|w| w == key) {
            let mut i = from + p + key.len();
            from = i;
            while input.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            if input.get(i) != Some(&b':') {
                continue;
            }
            i += 1;
            while input.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            if input.get(i) != Some(&b'"') {
                continue;
            }
            let s = crate::text::json_string(input, i + 1);
            vars.extend(self.graphql_secret_variables(&s.text));
            from = s.end.max(from);
        }
        vars
    }
}

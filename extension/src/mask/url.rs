//! URLs and request targets: userinfo, sensitive query parameters and path parameters
//! (`;jsessionid=...`).

use super::rules::{Masker, MASK};
use crate::text::percent_decode;

impl Masker {
    /// Masks the userinfo, sensitive query parameters and sensitive path parameters
    /// (`;jsessionid=...`) of a URL or request target. `None` if nothing changed.
    pub fn mask_url(&self, url: &str) -> Option<String> {
        // Nothing to mask without a query, a path parameter or an authority (most
        // request paths): what follows would rebuild `url` as it is.
        if !url.bytes().any(|b| matches!(b, b'?' | b';' | b':')) {
            return None;
        }
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
}

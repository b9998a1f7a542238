//! The key rule and its settings: which names hold secrets (`TAPLINE_MASK_REGEX`),
//! which services are scrubbed whole (`TAPLINE_SCRUB_DOMAINS`), and what a masked value
//! becomes. Every body and header masker asks these; they depend on nothing else here.

use regex::Regex;

/// What a masked value becomes.
pub(crate) const MASK: &str = "****";

/// The default key pattern (`TAPLINE_MASK_REGEX` replaces it): case-insensitive, matched
/// anywhere in a header name, query/form parameter name, JSON key or XML name.
///
/// Tuned to credentials, not names: a bare `key` is an identifier more often than a
/// secret (`ParameterKey`, S3's object `Key`, `KeySchema`, `partitionKey`), so only the
/// kinds of key that are credentials match (`api_key`, `AccessKeyId`, `privateKey`,
/// `SSECustomerKey`, `KeyMaterial`...). [`DEFAULT_NOT_SECRET`] removes names that merely
/// contain a word of it.
pub const DEFAULT_KEY_PATTERN: &str = "(?i)pass|secret|token|credential|auth|session|signature|cookie|(?:api|access|private|signing|encryption|master|client|customer|ssh|license|account|subscription|shared|hmac)[-_. ]?key|keymaterial";

/// Names the default pattern matches that are not secrets (whole names,
/// case-insensitive): authors, and the tokens that are pagination or idempotency
/// identifiers. Applies only while [`DEFAULT_KEY_PATTERN`] is the pattern in force.
pub(crate) const DEFAULT_NOT_SECRET: &str = "(?i)^(?:authors?|author[-_ ]?(?:name|id|email)|authority|authored|(?:next|(?:next[-_ ]?)?(?:continuation|pagination|starting|page|client|idempotency))[-_ ]?token|token[-_ ]?type)$";

/// Members that name a name/value pair (`{"name": "DB_PASSWORD", "value": ...}`, AWS
/// `ParameterKey`/`ParameterValue`): the *value* of such a member is matched by the key
/// rule and, if it matches, the pair's [`PAIR_VALUES`] sibling is masked. Compared
/// case-insensitively, whole.
pub(crate) const PAIR_NAMES: &[&str] = &["name", "key", "parameterkey", "parametername", "id"];

/// Members that hold the value of a name/value pair (see [`PAIR_NAMES`]).
pub(crate) const PAIR_VALUES: &[&str] = &["value", "parametervalue", "secretstring"];

/// Is `member` a name member of a name/value pair?
pub(crate) fn is_pair_name(member: &str) -> bool {
    PAIR_NAMES.iter().any(|n| n.eq_ignore_ascii_case(member))
}

/// Is `member` the value member of a name/value pair?
pub(crate) fn is_pair_value(member: &str) -> bool {
    PAIR_VALUES.iter().any(|n| n.eq_ignore_ascii_case(member))
}

/// The default `TAPLINE_SCRUB_DOMAINS`.
pub(crate) const DEFAULT_SCRUB_DOMAINS: &str = "secretsmanager|ssm|kms|sts";

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
    /// Names the key pattern matches that are not secrets (the default pattern's).
    not_secret: Option<Regex>,
    pub(super) scrub_domains: Vec<String>,
    /// Every exchange is scrubbed (no headers, query or bodies): the pattern the user
    /// set could not be applied ([`Masker::scrub_everything`]).
    pub(super) scrub_all: bool,
}

impl Masker {
    /// `pattern` matches sensitive key names (a regex, searched, not anchored; add
    /// `(?i)` for case-insensitivity). `scrub_domains` are host fragments: an exchange
    /// whose host contains one of them on a label boundary (`sts` matches
    /// `sts.amazonaws.com` and `sts-fips.us-east-1.amazonaws.com`, not `posts.example`)
    /// keeps no headers, query or bodies.
    pub fn new<S: AsRef<str>>(pattern: &str, scrub_domains: &[S]) -> Result<Self, MaskError> {
        let not_secret = if pattern == DEFAULT_KEY_PATTERN {
            Some(Regex::new(DEFAULT_NOT_SECRET)?)
        } else {
            None
        };
        Ok(Masker {
            key: Regex::new(pattern)?,
            not_secret,
            scrub_domains: scrub_domains
                .iter()
                .map(|d| d.as_ref().trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            scrub_all: false,
        })
    }

    /// Fail closed: the masker to use when the configured one cannot be built (an
    /// invalid `TAPLINE_MASK_REGEX`). What the user's pattern was meant to protect is
    /// unknown, so no exchange keeps headers, query or bodies; method, host, path
    /// (masked by the default rules), status, sizes and timing still go out.
    pub fn scrub_everything() -> Self {
        // The default pattern is a constant that compiles (this module's tests build
        // it); failing here would be a bug in this crate, not in its input.
        let key = Regex::new(DEFAULT_KEY_PATTERN).expect("the default mask pattern compiles");
        let not_secret = Regex::new(DEFAULT_NOT_SECRET).expect("the default exceptions compile");
        Masker {
            key,
            not_secret: Some(not_secret),
            scrub_domains: Vec::new(),
            scrub_all: true,
        }
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
        self.key.is_match(name) && !self.not_secret.as_ref().is_some_and(|n| n.is_match(name))
    }

    pub(crate) fn is_sensitive_param(&self, name: &str) -> bool {
        ALWAYS_MASKED_PARAMS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
            || self.is_sensitive_key(name)
    }

    /// Is `host` one whose exchanges are scrubbed?
    pub fn is_scrubbed_host(&self, host: &str) -> bool {
        if self.scrub_domains.is_empty() {
            return false;
        }
        // Lower-cased only when it has to be (a copy per exchange otherwise).
        let lowered;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };
        self.scrub_domains.iter().any(|d| {
            host.match_indices(d.as_str()).any(|(at, m)| {
                let before = host[..at].chars().next_back();
                let after = host[at + m.len()..].chars().next();
                matches!(before, None | Some('.'))
                    && matches!(after, None | Some('.') | Some('-') | Some(':'))
            })
        })
    }
}

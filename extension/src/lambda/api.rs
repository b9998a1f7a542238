//! The Extensions API client: register, wait for the next event, report fatal errors.
//!
//! Blocking `ureq` calls on the extension's one main thread: between events there is
//! nothing else for that thread to do, and `event/next` must block without a timeout
//! (Lambda freezes the sandbox while it waits). Events are parsed here, once, into
//! [`Event`]; nothing downstream looks at their JSON.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

const API_VERSION: &str = "2020-01-01";
/// Largest event body read (INVOKE and SHUTDOWN are a few hundred bytes).
const MAX_EVENT: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("AWS_LAMBDA_RUNTIME_API is not set")]
    NoRuntimeApi,
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("{what}: {message}")]
    Transport { what: &'static str, message: String },
    #[error("{what}: {message}")]
    Protocol { what: &'static str, message: String },
}

/// What `register` answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Registration {
    pub identifier: String,
    pub function_name: Option<String>,
    pub function_version: Option<String>,
    pub handler: Option<String>,
}

/// Why the environment shuts down (`shutdownReason`; the docs write it upper-case,
/// the wire lower-case: compared case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ShutdownReason {
    Spindown,
    Timeout,
    Failure,
    Other(String),
}

impl ShutdownReason {
    pub(crate) fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "spindown" => ShutdownReason::Spindown,
            "timeout" => ShutdownReason::Timeout,
            "failure" => ShutdownReason::Failure,
            _ => ShutdownReason::Other(s.to_string()),
        }
    }
}

/// An INVOKE event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Invoke {
    pub request_id: String,
    /// Unix ms.
    pub deadline_ms: u64,
    pub invoked_function_arn: Option<String>,
    /// The X-Ray trace header (`Root=1-...;Parent=...;Sampled=...`).
    pub xray: Option<String>,
}

/// A lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Invoke(Invoke),
    Shutdown {
        reason: ShutdownReason,
        /// Unix ms.
        deadline_ms: u64,
    },
}

impl Event {
    /// Parses an `event/next` body.
    pub(crate) fn parse(body: &[u8]) -> Result<Event, ApiError> {
        let bad = |message: String| ApiError::Protocol {
            what: "event/next",
            message,
        };
        let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
        let str_of = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let deadline_ms = v
            .get("deadlineMs")
            .and_then(|d| d.as_u64().or_else(|| d.as_f64().map(|f| f as u64)))
            .unwrap_or(0);
        let kind = str_of("eventType").ok_or_else(|| bad("no eventType".into()))?;
        match kind.to_ascii_uppercase().as_str() {
            "INVOKE" => Ok(Event::Invoke(Invoke {
                request_id: str_of("requestId")
                    .ok_or_else(|| bad("INVOKE without requestId".into()))?,
                deadline_ms,
                invoked_function_arn: str_of("invokedFunctionArn"),
                xray: v
                    .pointer("/tracing/value")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            })),
            "SHUTDOWN" => Ok(Event::Shutdown {
                reason: ShutdownReason::parse(&str_of("shutdownReason").unwrap_or_default()),
                deadline_ms,
            }),
            other => Err(bad(format!("unknown eventType {other:?}"))),
        }
    }
}

/// A client of `http://$AWS_LAMBDA_RUNTIME_API/2020-01-01/extension/`.
pub(crate) struct ExtensionsClient {
    runtime_api: String,
    agent: ureq::Agent,
    identifier: Option<String>,
}

impl ExtensionsClient {
    /// `runtime_api` is `host:port`, as in `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) fn new(runtime_api: &str) -> Self {
        // No read timeout: `event/next` blocks until the next event, for as long as it
        // takes. Connecting to the local API is immediate or broken.
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .redirects(0)
            .build();
        ExtensionsClient {
            runtime_api: runtime_api.to_string(),
            agent,
            identifier: None,
        }
    }

    pub(crate) fn from_env() -> Result<Self, ApiError> {
        let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(ApiError::NoRuntimeApi)?;
        Ok(Self::new(&api))
    }

    pub(crate) fn runtime_api(&self) -> &str {
        &self.runtime_api
    }

    pub(crate) fn identifier(&self) -> Option<&str> {
        self.identifier.as_deref()
    }

    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{API_VERSION}/extension/{path}", self.runtime_api)
    }

    /// `POST register` for INVOKE and SHUTDOWN, as extension `name` (the executable's
    /// file name: Lambda checks it).
    pub(crate) fn register(&mut self, name: &str) -> Result<Registration, ApiError> {
        const WHAT: &str = "register";
        let resp = self
            .agent
            .post(&self.url("register"))
            .set("Lambda-Extension-Name", name)
            .set("Content-Type", "application/json")
            .send_string(r#"{"events":["INVOKE","SHUTDOWN"]}"#)
            .map_err(|e| call_error(WHAT, e))?;
        let identifier = resp
            .header("Lambda-Extension-Identifier")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or(ApiError::Protocol {
                what: WHAT,
                message: "no Lambda-Extension-Identifier in the answer".into(),
            })?;
        let body: Value = read_body(resp)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let get = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        self.identifier = Some(identifier.clone());
        Ok(Registration {
            identifier,
            function_name: get("functionName"),
            function_version: get("functionVersion"),
            handler: get("handler"),
        })
    }

    /// `GET event/next`: blocks until Lambda has an event for us.
    pub(crate) fn next_event(&self) -> Result<Event, ApiError> {
        const WHAT: &str = "event/next";
        let resp = self
            .agent
            .get(&self.url("event/next"))
            .set(
                "Lambda-Extension-Identifier",
                self.identifier.as_deref().unwrap_or(""),
            )
            .call()
            .map_err(|e| call_error(WHAT, e))?;
        let body = read_body(resp).map_err(|e| ApiError::Transport {
            what: WHAT,
            message: e.to_string(),
        })?;
        Event::parse(&body)
    }

    /// `POST exit/error`: the extension cannot go on and says why; Lambda resets the
    /// environment. Exit after. (Never `init/error`: Lambda fails the function's init on
    /// it, and no mistake of ours may do that.)
    pub(crate) fn report_exit_error(
        &self,
        error_type: &str,
        message: &str,
    ) -> Result<(), ApiError> {
        let (path, what) = ("exit/error", "exit/error");
        let body =
            serde_json::json!({"errorMessage": message, "errorType": error_type}).to_string();
        self.agent
            .post(&self.url(path))
            .set(
                "Lambda-Extension-Identifier",
                self.identifier.as_deref().unwrap_or(""),
            )
            .set("Lambda-Extension-Function-Error-Type", error_type)
            .set("Content-Type", "application/json")
            .send_string(&body)
            .map(|_| ())
            .map_err(|e| call_error(what, e))
    }
}

pub(crate) fn call_error(what: &'static str, e: ureq::Error) -> ApiError {
    match e {
        ureq::Error::Status(status, resp) => ApiError::Status {
            what,
            status,
            body: resp
                .into_string()
                .unwrap_or_default()
                .chars()
                .take(512)
                .collect(),
        },
        ureq::Error::Transport(t) => ApiError::Transport {
            what,
            message: t.to_string(),
        },
    }
}

fn read_body(resp: ureq::Response) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    resp.into_reader().take(MAX_EVENT).read_to_end(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads as Lambda sends them (the wire's lower-case shutdown reasons, the
    /// documentation's upper-case ones, a float deadline).
    #[test]
    fn events_parse() {
        let cases: &[(&str, Event)] = &[
            (
                r#"{"eventType":"INVOKE","deadlineMs":1676051038245,"requestId":"3da1f2dc-3222-475e-9205-e2e6c6318895","invokedFunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:f","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}}"#,
                Event::Invoke(Invoke {
                    request_id: "3da1f2dc-3222-475e-9205-e2e6c6318895".into(),
                    deadline_ms: 1676051038245,
                    invoked_function_arn: Some("arn:aws:lambda:us-east-1:123456789012:function:f".into()),
                    xray: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into()),
                }),
            ),
            (
                r#"{"eventType":"INVOKE","deadlineMs":17.0,"requestId":"r","tracing":{"type":"X-Amzn-Trace-Id","value":""}}"#,
                Event::Invoke(Invoke {
                    request_id: "r".into(),
                    deadline_ms: 17,
                    invoked_function_arn: None,
                    xray: None,
                }),
            ),
            (
                r#"{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":5}"#,
                Event::Shutdown { reason: ShutdownReason::Spindown, deadline_ms: 5 },
            ),
            (
                r#"{"eventType":"SHUTDOWN","shutdownReason":"TIMEOUT","deadlineMs":5}"#,
                Event::Shutdown { reason: ShutdownReason::Timeout, deadline_ms: 5 },
            ),
            (
                r#"{"eventType":"SHUTDOWN","shutdownReason":"Failure","deadlineMs":5}"#,
                Event::Shutdown { reason: ShutdownReason::Failure, deadline_ms: 5 },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(&Event::parse(json.as_bytes()).unwrap(), want, "{json}");
        }
        for bad in [
            r#"{"eventType":"PING"}"#,
            "nope",
            r#"{"eventType":"INVOKE"}"#,
        ] {
            assert!(Event::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

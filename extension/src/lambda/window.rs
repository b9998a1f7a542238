//! Invocation windows: which exchanges belong to which invocation.
//!
//! [`Windows`] turns the runtime's own Runtime API exchanges into windows: a window opens
//! when `GET /2018-06-01/runtime/invocation/next` returns request id X (its
//! `Lambda-Runtime-Aws-Request-Id` header; the body is the event) and closes when the
//! runtime starts `POST .../invocation/X/response` (or `/error`) — or at the library's
//! `Lifecycle` record, whichever is known. An exchange belongs to the window that
//! contains its start; one that starts after X's response and before the next window
//! (a background thread) is X's too, reported late rather than lost.

use std::collections::VecDeque;

use tapline_record::LifecycleEvent;

use crate::exchange::Exchange;

use super::feed::LifecycleMark;

/// Windows remembered (late exchanges of older invocations lose their parent).
const REMEMBERED_WINDOWS: usize = 64;
const INVOCATION_PREFIX: &str = "/2018-06-01/runtime/invocation/";

/// How an invocation ended, as the runtime told the Runtime API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Response,
    Error,
}

/// One invocation as the runtime lived it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct InvocationWindow {
    pub request_id: String,
    /// When `invocation/next` returned this id (last response byte read).
    pub opened_unix_ns: Option<u64>,
    /// When the runtime started posting the outcome.
    pub closed_unix_ns: Option<u64>,
    pub outcome: Option<Outcome>,
    /// The event (captured prefix of the `next` response body).
    pub event: Vec<u8>,
    /// `Lambda-Runtime-Trace-Id` of the `next` response.
    pub trace_header: Option<String>,
}

/// Where an exchange belongs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Attribution<'a> {
    /// Started inside this invocation's window.
    During(&'a str),
    /// Started after this invocation's response, before the next window.
    After(&'a str),
    /// Started before any known window (the init phase).
    Init,
}

/// The windows seen so far (the most recent [`REMEMBERED_WINDOWS`]).
#[derive(Default)]
pub(crate) struct Windows {
    list: VecDeque<InvocationWindow>,
}

impl Windows {
    pub(crate) fn get(&self, request_id: &str) -> Option<&InvocationWindow> {
        self.list.iter().find(|w| w.request_id == request_id)
    }

    fn entry(&mut self, request_id: &str) -> &mut InvocationWindow {
        if let Some(i) = self.list.iter().position(|w| w.request_id == request_id) {
            return &mut self.list[i];
        }
        if self.list.len() >= REMEMBERED_WINDOWS {
            self.list.pop_front();
        }
        self.list.push_back(InvocationWindow {
            request_id: request_id.to_string(),
            ..Default::default()
        });
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    /// Learns from one Runtime API exchange of the runtime.
    pub(crate) fn observe_runtime(&mut self, ex: &Exchange) {
        let Some(path) = ex.path.as_deref() else {
            return;
        };
        let Some(rest) = path.strip_prefix(INVOCATION_PREFIX) else {
            return;
        };
        if rest == "next" {
            let Some(id) = ex.response_header("Lambda-Runtime-Aws-Request-Id") else {
                return;
            };
            let id = id.trim().to_string();
            let trace = ex
                .response_header("Lambda-Runtime-Trace-Id")
                .map(str::to_string);
            let event = ex
                .response_body
                .as_ref()
                .map(|b| b.bytes.clone())
                .unwrap_or_default();
            let w = self.entry(&id);
            w.opened_unix_ns = Some(ex.start_unix_ns + ex.duration_ns);
            w.trace_header = trace;
            w.event = event;
        } else if let Some((id, what)) = rest.split_once('/') {
            let outcome = match what {
                "response" => Outcome::Response,
                "error" => Outcome::Error,
                _ => return,
            };
            if ex.method.as_deref() != Some("POST") {
                return;
            }
            // A streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`)
            // is over when its body ends, not when its head was written: the function
            // still works while it streams. The exchange's end (the Runtime API's answer,
            // which comes after the last chunk) bounds that; the `Lifecycle` record,
            // written at the end of the body, is the closer mark when known.
            let streamed = ex
                .request_header("Lambda-Runtime-Function-Response-Mode")
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("streaming"));
            let at = if streamed {
                ex.start_unix_ns.saturating_add(ex.duration_ns)
            } else {
                ex.start_unix_ns
            };
            let w = self.entry(id);
            w.outcome = Some(outcome);
            w.closed_unix_ns = Some(match w.closed_unix_ns {
                Some(t) => t.min(at),
                None => at,
            });
        }
    }

    /// Learns from a `Lifecycle` record.
    pub(crate) fn observe_lifecycle(&mut self, mark: &LifecycleMark) {
        let outcome = match mark.event {
            LifecycleEvent::InvocationResponse => Outcome::Response,
            LifecycleEvent::InvocationError => Outcome::Error,
            LifecycleEvent::InvocationNext | LifecycleEvent::Unknown(_) => return,
        };
        let w = self.entry(&mark.request_id);
        w.outcome.get_or_insert(outcome);
        // The record is written when the POST has been fully written; its start (from
        // the exchange) is earlier and wins when known.
        w.closed_unix_ns.get_or_insert(mark.wall_ns);
    }

    /// The Telemetry API's `platform.runtimeDone` for `request_id` arrived (seen at
    /// `at`): the window closes there unless the runtime's post was seen, and — for a
    /// runtime whose Runtime API calls are not seen — opens when the extension was told
    /// of the invocation (`invoked_at`, INVOKE), unless the runtime's own `next`
    /// exchange says when (it wins, also when it arrives later).
    pub(crate) fn close_at_runtime_done(
        &mut self,
        request_id: &str,
        invoked_at: u64,
        at: u64,
        success: bool,
    ) {
        let w = self.entry(request_id);
        w.opened_unix_ns.get_or_insert(invoked_at.min(at));
        w.outcome.get_or_insert(if success {
            Outcome::Response
        } else {
            Outcome::Error
        });
        w.closed_unix_ns.get_or_insert(at);
    }

    /// True once the runtime has posted this invocation's outcome.
    pub(crate) fn is_closed(&self, request_id: &str) -> bool {
        self.get(request_id)
            .is_some_and(|w| w.closed_unix_ns.is_some())
    }

    /// The window an exchange that started at `start_unix_ns` belongs to.
    pub(crate) fn attribute(&self, start_unix_ns: u64) -> Attribution<'_> {
        let mut best: Option<&InvocationWindow> = None;
        for w in &self.list {
            let Some(open) = w.opened_unix_ns else {
                continue;
            };
            if open <= start_unix_ns && best.is_none_or(|b| b.opened_unix_ns < Some(open)) {
                best = Some(w);
            }
        }
        match best {
            None => Attribution::Init,
            Some(w) => match w.closed_unix_ns {
                Some(close) if start_unix_ns >= close => Attribution::After(&w.request_id),
                _ => Attribution::During(&w.request_id),
            },
        }
    }
}

/// True for the runtime's own Runtime API calls: lifecycle, not user traffic. The
/// library marks the connection (from the traced runtime's own `AWS_LAMBDA_RUNTIME_API`);
/// the extension's own address may differ (a proxy between runtime and API, as local
/// emulators use), so it is not consulted.
pub(crate) fn is_runtime_api(ex: &Exchange) -> bool {
    ex.runtime_api
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Body, TlsKind};

    fn ex(method: &str, path: &str, start: u64, dur: u64) -> Exchange {
        Exchange {
            conn_id: 1,
            start_unix_ns: start,
            duration_ns: dur,
            method: Some(method.into()),
            scheme: "http",
            host: Some("127.0.0.1".into()),
            port: Some(9001),
            path: Some(path.into()),
            request_wire_bytes: 0,
            response_wire_bytes: 0,
            peer: "127.0.0.1:9001".parse().ok(),
            tls: TlsKind::None,
            sni: None,
            ..crate::exchange::sample()
        }
    }

    fn next(id: &str, start: u64, dur: u64) -> Exchange {
        let mut e = ex("GET", "/2018-06-01/runtime/invocation/next", start, dur);
        e.response_headers = vec![
            ("Lambda-Runtime-Aws-Request-Id".into(), id.into()),
            (
                "Lambda-Runtime-Trace-Id".into(),
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8".into(),
            ),
        ];
        e.response_body = Some(Body {
            bytes: br#"{"k":1}"#.to_vec(),
            size: 7,
            truncated: false,
            decoded: None,
        });
        e
    }

    #[test]
    fn windows_from_runtime_exchanges() {
        let mut w = Windows::default();
        assert_eq!(w.attribute(5), Attribution::Init);
        w.observe_runtime(&next("a", 0, 100));
        assert!(!w.is_closed("a"));
        assert_eq!(w.attribute(150), Attribution::During("a"));
        w.observe_runtime(&ex(
            "POST",
            "/2018-06-01/runtime/invocation/a/response",
            200,
            5,
        ));
        assert!(w.is_closed("a"));
        assert_eq!(w.get("a").unwrap().outcome, Some(Outcome::Response));
        assert_eq!(w.get("a").unwrap().event, br#"{"k":1}"#);
        assert_eq!(w.attribute(50), Attribution::Init);
        assert_eq!(w.attribute(199), Attribution::During("a"));
        assert_eq!(w.attribute(250), Attribution::After("a"));
        // The next window: a long poll that returned at 1000.
        w.observe_runtime(&next("b", 205, 795));
        assert_eq!(w.attribute(999), Attribution::After("a"));
        assert_eq!(w.attribute(1000), Attribution::During("b"));
        w.observe_lifecycle(&LifecycleMark {
            event: LifecycleEvent::InvocationError,
            request_id: "b".into(),
            wall_ns: 2000,
        });
        assert!(w.is_closed("b"));
        assert_eq!(w.get("b").unwrap().outcome, Some(Outcome::Error));
        assert_eq!(w.attribute(2500), Attribution::After("b"));
    }

    #[test]
    fn a_streamed_response_closes_its_window_when_the_stream_ends() {
        let mut w = Windows::default();
        w.observe_runtime(&next("s", 0, 100));
        // Head written at 200, last chunk at ~900, the Runtime API answered at 905.
        let mut post = ex(
            "POST",
            "/2018-06-01/runtime/invocation/s/response",
            200,
            705,
        );
        post.request_headers = vec![
            (
                "Lambda-Runtime-Function-Response-Mode".into(),
                "streaming".into(),
            ),
            ("Transfer-Encoding".into(), "chunked".into()),
        ];
        w.observe_runtime(&post);
        assert!(w.is_closed("s"));
        // A call made while the stream was open belongs to the invocation.
        assert_eq!(w.attribute(500), Attribution::During("s"));
        assert_eq!(w.attribute(950), Attribution::After("s"));
        // The Lifecycle record (end of the body) is the closer mark.
        let mut w2 = Windows::default();
        w2.observe_runtime(&next("s", 0, 100));
        w2.observe_lifecycle(&LifecycleMark {
            event: LifecycleEvent::InvocationResponse,
            request_id: "s".into(),
            wall_ns: 901,
        });
        w2.observe_runtime(&post);
        assert_eq!(w2.get("s").unwrap().closed_unix_ns, Some(901));
    }

    #[test]
    fn runtime_api_exchanges_are_recognised_by_the_library_mark() {
        let mut e = ex("GET", "/2018-06-01/runtime/invocation/next", 0, 1);
        assert!(!is_runtime_api(&e), "a path alone is not the Runtime API");
        e.runtime_api = true;
        assert!(is_runtime_api(&e));
    }
}

//! Blind spots said out loud: programs (and objects) a traced process ran where the
//! library could not see, from `Notice` records.
//!
//! Why a report says them: a static or Go program run under `tapline run` makes its
//! calls unseen, and "no HTTP exchanges captured" would read as "made no call". Each
//! notice is one footer line in the table, one `{"notice": ...}` line in JSON lines,
//! part of the HAR `log.comment`, and a span event in Lambda.

use serde_json::{json, Value};
use tapline_record::NoticeKind;

/// One blind spot: `program` ran (or was loaded) in process `pid` unseen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// When it was written (ns since the Unix epoch).
    pub unix_ns: u64,
    pub pid: u32,
    pub kind: NoticeKind,
    pub program: String,
}

impl Notice {
    /// The kind as the JSON contract names it.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            NoticeKind::StaticExecutable => "static_executable",
            NoticeKind::GoProgram => "go_program",
            NoticeKind::SetId => "set_id",
            NoticeKind::ObjectUntouched => "object_untouched",
            NoticeKind::JavaClassUntouched => "java_class_untouched",
            NoticeKind::Unknown(_) => "unknown",
        }
    }

    /// The sentence a person reads.
    pub fn message(&self) -> String {
        let why = match self.kind {
            NoticeKind::StaticExecutable => "is statically linked: LD_PRELOAD cannot see its calls",
            NoticeKind::GoProgram => {
                "is a Go program: it makes its own system calls, LD_PRELOAD cannot see them"
            }
            NoticeKind::SetId => "is set-id: the loader drops LD_PRELOAD, its calls are not seen",
            NoticeKind::ObjectUntouched => "was loaded but left untouched: its calls are not seen",
            NoticeKind::JavaClassUntouched => {
                "was left as it is by the Java agent: its TLS stays opaque"
            }
            NoticeKind::Unknown(_) => "is not seen",
        };
        let program = if self.program.is_empty() {
            "a program"
        } else {
            &self.program
        };
        format!("{program} (pid {}) {why}", self.pid)
    }

    /// The JSON-lines object: `{"notice", "message", "pid", "program"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "notice": self.kind_name(),
            "message": self.message(),
            "pid": self.pid,
            "program": self.program,
        })
    }
}

/// Adds `n` unless the same notice (kind, pid, program) is there already: a program
/// checked by `tapline run` and again by a hook, or a spool read twice, says it once.
pub(crate) fn add(notices: &mut Vec<Notice>, n: Notice) {
    let same = |m: &Notice| m.kind == n.kind && m.pid == n.pid && m.program == n.program;
    if !notices.iter().any(same) {
        notices.push(n);
        notices.sort_by_key(|m| (m.unix_ns, m.pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_said_once_in_time_order() {
        let n = |unix_ns, pid, kind| Notice {
            unix_ns,
            pid,
            kind,
            program: "/bin/busybox".into(),
        };
        let mut all = Vec::new();
        add(&mut all, n(5, 2, NoticeKind::GoProgram));
        add(&mut all, n(3, 1, NoticeKind::StaticExecutable));
        add(&mut all, n(9, 1, NoticeKind::StaticExecutable));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].pid, 1);
        assert_eq!(
            all[0].message(),
            "/bin/busybox (pid 1) is statically linked: LD_PRELOAD cannot see its calls"
        );
        let v = all[1].to_json();
        assert_eq!(v["notice"], "go_program");
        assert_eq!(v["pid"], 2);
        assert_eq!(v["program"], "/bin/busybox");
    }
}

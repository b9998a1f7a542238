//! The kept batch goes out on a thread of its own, at the lowest CPU priority.
//!
//! Why: with [`super::flush::FlushMode::DuringNext`] the previous invocation's batch is
//! sent while the next invocation runs. Sent on the extension's own thread, its encoding,
//! connect and POST compete with the function for the sandbox's CPU at the very moment
//! the function starts (a Lambda sandbox has a fraction of a core to a few cores, and
//! the function's own threads, not ours, decide its latency). On a thread scheduled
//! `SCHED_IDLE` it runs only on CPU time nobody else wants: while the function waits
//! on its own calls, or after it has answered. The extension's thread stays at normal
//! priority: what it does after the response is on the bill.
//!
//! The send is always settled — waited for, and its exporter taken back — before the
//! extension reads the spool for the next report, before Next, and at SHUTDOWN: a send
//! is never in flight while the sandbox is frozen (freezing waits for Next), so a batch
//! is sent once or kept once, as before.
//!
//! A job the thread has not started by the time it is settled is taken back and run on
//! the extension's thread: a `SCHED_IDLE` thread can wait without end behind busy
//! threads of normal priority, and the extension would otherwise wait on it before Next
//! (a priority inversion) until the export's deadline passed and the batch went to the
//! outbox. A job already started is waited for: it gets its CPU share as it runs.

use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::export::OtlpExporter;

/// What a send leaves behind: the exporter to reuse and when its export finished.
pub(crate) type Kept = Option<(OtlpExporter, Instant)>;
type Job = Box<dyn FnOnce() -> Kept + Send>;

/// One background sender; at most one send in flight.
#[derive(Default)]
pub(crate) struct Sender {
    worker: Option<Worker>,
    /// A job was started and its result not yet taken.
    in_flight: bool,
}

struct Worker {
    /// The job waiting for the thread; whoever takes it first runs it.
    slot: Arc<Mutex<Option<Job>>>,
    /// One wake-up per job put in `slot`.
    wake: mpsc::Sender<()>,
    done: mpsc::Receiver<Kept>,
    _thread: JoinHandle<()>,
}

impl Worker {
    fn spawn() -> std::io::Result<Worker> {
        let slot: Arc<Mutex<Option<Job>>> = Arc::default();
        let (wake, woken) = mpsc::channel::<()>();
        let (outbox, done) = mpsc::channel::<Kept>();
        let theirs = slot.clone();
        let thread = std::thread::Builder::new()
            .name("tapline-send".into())
            .spawn(move || {
                lower_priority();
                while woken.recv().is_ok() {
                    // Taken back by `settle` already: nothing to run, nothing to report.
                    let Some(job) = take(&theirs) else { continue };
                    if outbox.send(job()).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Worker {
            slot,
            wake,
            done,
            _thread: thread,
        })
    }
}

/// The job in `slot`, if any (the lock is held for the take only, never while a job runs).
fn take(slot: &Mutex<Option<Job>>) -> Option<Job> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// `SCHED_IDLE` for the calling thread; failing that, the extension sends at normal
/// priority (said once).
fn lower_priority() {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    use thread_priority::ThreadPriority;
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
        super::log(format_args!(
            "sending at normal priority (SCHED_IDLE refused: {e:?})"
        ));
    }
}

impl Sender {
    /// Starts `job` in the background (after settling one still in flight). Where no
    /// thread can be had, it runs here and now, and its result waits for [`Self::settle`].
    pub(crate) fn start(&mut self, job: impl FnOnce() -> Kept + Send + 'static, kept: &mut Kept) {
        if let Some(k) = self.settle() {
            *kept = k;
        }
        if self.worker.is_none() {
            match Worker::spawn() {
                Ok(w) => self.worker = Some(w),
                Err(e) => {
                    super::log(format_args!("no sender thread ({e}); sending inline"));
                    *kept = job();
                    return;
                }
            }
        }
        let Some(w) = &self.worker else { return };
        *w.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(job));
        if w.wake.send(()).is_ok() {
            self.in_flight = true;
            return;
        }
        // The worker is gone (it panicked): run the job here; a new worker next time.
        let job = take(&w.slot);
        self.worker = None;
        if let Some(job) = job {
            *kept = job();
        }
    }

    /// Waits for the send in flight, if any; `Some` with what it left behind.
    pub(crate) fn settle(&mut self) -> Option<Kept> {
        if !std::mem::take(&mut self.in_flight) {
            return None;
        }
        let w = self.worker.as_ref()?;
        if let Some(job) = take(&w.slot) {
            // Not started: run it here, at the extension's priority (a panic in it is
            // contained, as it is on the thread).
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            return Some(ran.unwrap_or(None));
        }
        match w.done.recv() {
            Ok(k) => Some(k),
            Err(_) => {
                // The job panicked with the worker: nothing to reuse.
                self.worker = None;
                Some(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn each_job_runs_once_and_settles_before_the_next() {
        let ran = Arc::new(AtomicUsize::new(0));
        let mut s = Sender::default();
        let mut kept: Kept = None;
        assert!(s.settle().is_none(), "nothing in flight yet");
        for i in 1..=5 {
            let r = ran.clone();
            s.start(
                move || {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    r.fetch_add(1, Ordering::SeqCst);
                    None
                },
                &mut kept,
            );
            // Starting a job settles the one before it.
            assert_eq!(ran.load(Ordering::SeqCst), i - 1);
        }
        assert!(s.settle().is_some());
        assert_eq!(ran.load(Ordering::SeqCst), 5);
        assert!(s.settle().is_none(), "settled once");
    }

    #[test]
    fn a_job_the_thread_has_not_started_is_run_by_settle() {
        let mut s = Sender::default();
        let mut kept: Kept = None;
        s.start(|| None, &mut kept);
        s.settle();
        let w = s.worker.as_ref().expect("a worker");
        let here = std::thread::current().id();
        let ran_on = Arc::new(Mutex::new(None));
        let r = ran_on.clone();
        let job: Job = Box::new(move || {
            *r.lock().unwrap() = Some(std::thread::current().id());
            None
        });
        *w.slot.lock().unwrap() = Some(job);
        s.in_flight = true;
        // No wake-up sent: the thread never sees it, as if starved.
        assert!(s.settle().is_some());
        assert_eq!(
            *ran_on.lock().unwrap(),
            Some(here),
            "ran on the settling thread"
        );
        assert!(s.settle().is_none(), "settled once");
    }

    #[test]
    fn a_panicking_job_leaves_the_sender_usable() {
        let mut s = Sender::default();
        let mut kept: Kept = None;
        s.start(|| panic!("boom"), &mut kept);
        assert!(matches!(s.settle(), Some(None)));
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        s.start(
            move || {
                r.fetch_add(1, Ordering::SeqCst);
                None
            },
            &mut kept,
        );
        s.settle();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}

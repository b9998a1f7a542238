//! The command line: `tapline run`, `tapline show`, `tapline extension`.
//!
//! Why `run` is careful the way it is: tapline wraps someone else's program and must be
//! invisible to it and to whoever called it. The program gets our stdin/stdout/stderr
//! untouched; the report goes to stderr (or a file); Ctrl-C and Ctrl-\ reach the
//! program from the terminal, so tapline survives them while the program runs and then
//! reports what it did; and tapline exits with the program's status (128+N for a
//! signal N, as shells do), so scripts behave the same with and without it.
//!
//! Errors are one enum per concern: [`UsageError`] (exit 2) for what the user typed,
//! [`RunError`] for what went wrong around the program.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::assemble::assemble;
use crate::budget::Budget;
use crate::exchange::Exchange;
use crate::export::{ExportError, OtlpExporter, Outbox, Resource};
use crate::mask::{MaskError, Masker};
use crate::report::{self, Format};
use crate::spool::{Spool, SpoolError};

/// Exit status for a command line that could not be understood.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when tapline itself failed (no library, unreadable spool...).
pub const EXIT_FAILURE: i32 = 1;

pub const USAGE: &str = "\
tapline: show the HTTP calls any program makes

usage:
  tapline run [OPTIONS] -- CMD [ARGS...]   run CMD with capture, then report its HTTP exchanges
  tapline show [OPTIONS] DIR               report what a spool directory holds
  tapline extension                        run as an AWS Lambda extension
  tapline --help | --version

options:
  -f, --format table|json|har   report format (default: table)
  -o, --output PATH             write the report to PATH instead of stderr
      --otlp [ENDPOINT]         (run) also export OTLP traces
      --spool-dir DIR           (run) spool directory to use (default: a private one)
      --keep-spool              (run) keep the spool directory afterwards

environment:
  TAPLINE_LIB       path of libtapline.so (default: next to the tapline binary)
  TAPLINE_MAX_BODY  bytes of each body kept (default 8192)
";

/// Where and how to write a report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportOptions {
    pub format: Format,
    pub output: Option<PathBuf>,
}

/// `tapline run`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    pub report: ReportOptions,
    /// `Some(None)`: `--otlp` without an endpoint (use `OTEL_*`).
    pub otlp: Option<Option<String>>,
    pub spool_dir: Option<PathBuf>,
    pub keep_spool: bool,
    /// The program and its arguments; never empty.
    pub command: Vec<OsString>,
}

/// `tapline show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShowOptions {
    pub report: ReportOptions,
    pub dir: PathBuf,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    Run(RunOptions),
    Show(ShowOptions),
    Extension,
    Help,
    Version,
}

/// The command line could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> Self {
        UsageError(e.to_string())
    }
}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let sub = match p.next()? {
        None => {
            return if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
                Ok(Invocation::Extension)
            } else {
                Err(usage("missing command (run, show or extension)"))
            };
        }
        Some(Short('h') | Long("help")) => return Ok(Invocation::Help),
        Some(Short('V') | Long("version")) => return Ok(Invocation::Version),
        Some(Value(v)) => v
            .into_string()
            .map_err(|v| usage(format!("unknown command {v:?}")))?,
        Some(other) => return Err(other.unexpected().into()),
    };
    match sub.as_str() {
        "run" => parse_run(&mut p).map(Invocation::Run),
        "show" => parse_show(&mut p).map(Invocation::Show),
        "extension" => match p.next()? {
            None => Ok(Invocation::Extension),
            Some(Short('h') | Long("help")) => Ok(Invocation::Help),
            Some(other) => Err(other.unexpected().into()),
        },
        "help" => Ok(Invocation::Help),
        other => Err(usage(format!("unknown command {other:?}"))),
    }
}

/// An option both `run` and `show` take.
#[derive(Clone, Copy)]
enum ReportOption {
    Format,
    Output,
}

fn report_option(arg: &lexopt::Arg<'_>) -> Option<ReportOption> {
    use lexopt::prelude::*;
    match arg {
        Short('f') | Long("format") => Some(ReportOption::Format),
        Short('o') | Long("output") => Some(ReportOption::Output),
        _ => None,
    }
}

fn set_report_option(
    p: &mut lexopt::Parser,
    which: ReportOption,
    r: &mut ReportOptions,
) -> Result<(), UsageError> {
    match which {
        ReportOption::Format => {
            let v = p.value()?;
            let v = v.to_str().ok_or_else(|| usage("--format: not UTF-8"))?;
            r.format = v
                .parse()
                .map_err(|e: report::UnknownFormat| usage(e.to_string()))?;
        }
        ReportOption::Output => r.output = Some(PathBuf::from(p.value()?)),
    }
    Ok(())
}

fn parse_run(p: &mut lexopt::Parser) -> Result<RunOptions, UsageError> {
    use lexopt::prelude::*;
    let mut o = RunOptions::default();
    loop {
        let Some(arg) = p.next()? else { break };
        if let Some(which) = report_option(&arg) {
            set_report_option(p, which, &mut o.report)?;
            continue;
        }
        match arg {
            Long("otlp") => {
                let endpoint = match p.optional_value() {
                    Some(v) => Some(v),
                    // `--otlp URL`: only something that looks like a URL is taken, so
                    // that `--otlp CMD` without `--` still runs CMD.
                    None => p.raw_args()?.next_if(|a| {
                        let s = a.to_string_lossy();
                        s.starts_with("http://") || s.starts_with("https://")
                    }),
                };
                let endpoint = endpoint
                    .map(|e| e.into_string().map_err(|_| usage("--otlp: not UTF-8")))
                    .transpose()?;
                o.otlp = Some(endpoint);
            }
            Long("spool-dir") => o.spool_dir = Some(PathBuf::from(p.value()?)),
            Long("keep-spool") => o.keep_spool = true,
            Short('h') | Long("help") => return Err(usage("")),
            Value(cmd) => {
                // The first word not an option starts the command, `--` or not.
                o.command.push(cmd);
                o.command.extend(p.raw_args()?);
                break;
            }
            other => return Err(other.unexpected().into()),
        }
    }
    // lexopt swallows `--` and returns what follows as values; a `--` right before the
    // command is therefore already gone here.
    if o.command.is_empty() {
        return Err(usage(
            "run: missing the command to run (tapline run -- CMD [ARGS...])",
        ));
    }
    Ok(o)
}

fn parse_show(p: &mut lexopt::Parser) -> Result<ShowOptions, UsageError> {
    use lexopt::prelude::*;
    let mut report = ReportOptions::default();
    let mut dir = None;
    while let Some(arg) = p.next()? {
        if let Some(which) = report_option(&arg) {
            set_report_option(p, which, &mut report)?;
            continue;
        }
        match arg {
            Value(v) if dir.is_none() => dir = Some(PathBuf::from(v)),
            Short('h') | Long("help") => return Err(usage("")),
            other => return Err(other.unexpected().into()),
        }
    }
    let dir = dir.ok_or_else(|| usage("show: missing the spool directory (tapline show DIR)"))?;
    Ok(ShowOptions { report, dir })
}

/// What went wrong around the traced program.
#[derive(Debug)]
pub enum RunError {
    /// `libtapline.so` is not where we looked.
    LibraryNotFound(PathBuf),
    /// Our own executable's path is unknown, so the library next to it cannot be found.
    NoExePath(io::Error),
    SpoolDir {
        dir: PathBuf,
        source: io::Error,
    },
    Spawn {
        program: OsString,
        source: io::Error,
    },
    Spool(SpoolError),
    Output {
        path: Option<PathBuf>,
        source: io::Error,
    },
    Signals(io::Error),
    /// `TAPLINE_MASK_REGEX` is not a valid pattern: nothing is printed unmasked.
    Mask(MaskError),
    Export(ExportError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::LibraryNotFound(p) => write!(
                f,
                "capture library not found at {} (put libtapline.so next to the tapline binary, or set TAPLINE_LIB)",
                p.display()
            ),
            RunError::NoExePath(e) => write!(f, "cannot find the tapline executable's path: {e}"),
            RunError::SpoolDir { dir, source } => {
                write!(f, "cannot create spool directory {}: {source}", dir.display())
            }
            RunError::Spawn { program, source } => {
                write!(f, "cannot run {}: {source}", program.to_string_lossy())
            }
            RunError::Spool(e) => e.fmt(f),
            RunError::Mask(e) => write!(f, "masking is misconfigured, no report written: {e}"),
            RunError::Export(e) => e.fmt(f),
            RunError::Output { path: Some(p), source } => {
                write!(f, "cannot write the report to {}: {source}", p.display())
            }
            RunError::Output { path: None, source } => write!(f, "cannot write the report: {source}"),
            RunError::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs a parsed command line; returns the process exit status.
pub fn execute(inv: Invocation) -> i32 {
    match inv {
        Invocation::Help => {
            print!("{USAGE}");
            0
        }
        Invocation::Version => {
            println!("tapline {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Invocation::Extension => crate::lambda::run(),
        Invocation::Show(o) => match show(&o) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tapline: {e}");
                EXIT_FAILURE
            }
        },
        Invocation::Run(o) => run(&o),
    }
}

/// `tapline show DIR`.
pub fn show(o: &ShowOptions) -> Result<(), RunError> {
    let spool = Spool::read_dir(&o.dir).map_err(RunError::Spool)?;
    let assembly = prepare(&spool)?;
    write_report(&o.report, &spool, &assembly)
}

/// Reassembles the spool, then masks and budgets every exchange: nothing below this
/// point (reports, exports) ever sees an unmasked secret.
fn prepare(spool: &Spool) -> Result<crate::assemble::Assembly, RunError> {
    let masker = Masker::from_env().map_err(RunError::Mask)?;
    let mut assembly = assemble(spool);
    // Recognition reads the raw requests; it keeps only names, and masking follows.
    crate::aws::recognise_all(&mut assembly.exchanges);
    masker.mask_all(&mut assembly.exchanges);
    Budget::from_env().apply(&mut assembly.exchanges);
    Ok(assembly)
}

/// `--otlp [ENDPOINT]`: one batch of CLIENT spans; a batch that cannot be sent is kept in
/// the outbox of the default spool directory (the run's own spool is removed) and sent
/// first next time.
fn export_otlp(endpoint: Option<&str>, exchanges: &[Exchange]) -> Result<(), RunError> {
    let outbox_home = std::env::var_os(tapline_record::settings::SPOOL_DIR.name())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(tapline_record::settings::DEFAULT_SPOOL_DIR));
    let exporter = OtlpExporter::from_env(endpoint)
        .map_err(RunError::Export)?
        .with_outbox(Outbox::new(&outbox_home));
    let resource = Resource::from_env("tapline");
    let outcome = exporter
        .export(exchanges, &resource)
        .map_err(RunError::Export)?;
    eprintln!(
        "tapline: exported {} span(s) to {}{}",
        outcome.spans,
        exporter.config().endpoint,
        if outcome.outbox_sent > 0 {
            format!(
                " (and {} kept batch(es) from the outbox)",
                outcome.outbox_sent
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

fn write_report(
    r: &ReportOptions,
    spool: &Spool,
    assembly: &crate::assemble::Assembly,
) -> Result<(), RunError> {
    let out_err = |source| RunError::Output {
        path: r.output.clone(),
        source,
    };
    match &r.output {
        Some(path) => {
            let mut f = io::BufWriter::new(File::create(path).map_err(out_err)?);
            report::write(r.format, &assembly.exchanges, &mut f).map_err(out_err)?;
            f.flush().map_err(out_err)?;
        }
        None => {
            let stderr = io::stderr();
            let mut lock = io::BufWriter::new(stderr.lock());
            report::write(r.format, &assembly.exchanges, &mut lock).map_err(out_err)?;
            lock.flush().map_err(out_err)?;
        }
    }
    // The footer is about the spool, not the exchanges: stderr, and not into a
    // machine-readable stream that is itself on stderr.
    if r.format == Format::Table || r.output.is_some() {
        if let Some(line) = report::footer(&assembly.totals) {
            eprintln!("{line}");
        }
    }
    for f in spool.files.iter().filter(|f| f.error.is_some()) {
        eprintln!(
            "tapline: spool file {} unreadable: {}",
            f.name,
            f.error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// `tapline run`: returns CMD's exit status (or ours when CMD could not run).
pub fn run(o: &RunOptions) -> i32 {
    let lib = match find_library() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tapline: {e}");
            return EXIT_FAILURE;
        }
    };
    let spool = match SpoolDir::create(o.spool_dir.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tapline: {e}");
            return EXIT_FAILURE;
        }
    };
    let (status, followed) = match run_child(o, &lib, &spool.path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tapline: {e}");
            let code = match &e {
                RunError::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
                RunError::Spawn { .. } => 126,
                _ => EXIT_FAILURE,
            };
            if !o.keep_spool {
                spool.remove();
            }
            return code;
        }
    };
    let read = match followed {
        Some(f) => f.into_spool(&spool.path),
        None => Spool::read_dir(&spool.path),
    };
    let report = read.map_err(RunError::Spool).and_then(|s| {
        let assembly = prepare(&s)?;
        write_report(&o.report, &s, &assembly)?;
        Ok(assembly)
    });
    match report {
        Ok(assembly) => {
            if let Some(endpoint) = &o.otlp {
                if let Err(e) = export_otlp(endpoint.as_deref(), &assembly.exchanges) {
                    eprintln!("tapline: otlp: {e}");
                }
            }
        }
        // The program's status still wins: tapline must not change what a script sees.
        Err(e) => eprintln!("tapline: {e}"),
    }
    if o.keep_spool {
        eprintln!("tapline: spool kept in {}", spool.path.display());
    } else {
        spool.remove();
    }
    status
}

/// Spawns the program with the library preloaded and waits for it. Ctrl-C / Ctrl-\
/// reach the program from the terminal; tapline ignores them until it has exited, then
/// they act normally again (so a hung report can still be interrupted).
fn run_child(
    o: &RunOptions,
    lib: &Path,
    spool_dir: &Path,
) -> Result<(i32, Option<Followed>), RunError> {
    let child_done = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGQUIT] {
        // A handler (not SIG_IGN) is what we want: the exec'd child resets handled
        // signals to their default action, whereas it would inherit SIG_IGN.
        signal_hook::flag::register_conditional_default(sig, Arc::clone(&child_done))
            .map_err(RunError::Signals)?;
    }
    let Some((program, args)) = o.command.split_first() else {
        return Err(RunError::Spawn {
            program: OsString::new(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no command given"),
        });
    };
    // Segments made ahead of need: the program's first record claims one with a rename
    // instead of creating and faulting its own; a helper thread keeps two ready, and
    // (unless the spool is to be kept as written) follows the segments as the program
    // fills them, handing finished ones back for reuse: a long run stays within a few
    // segments instead of claiming new ones up to the directory bound.
    let segment_bytes = std::env::var(tapline_record::settings::SEGMENT_BYTES.name())
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(crate::segment::DEFAULT_SEGMENT_BYTES);
    let _ = crate::segment::make_free_segments(spool_dir, 2, segment_bytes);
    let follow = !o.keep_spool;
    let refill = {
        let done = Arc::clone(&child_done);
        let dir = spool_dir.to_owned();
        std::thread::spawn(move || {
            let mut followed = follow.then(|| Followed::new(&dir));
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let _ = crate::segment::make_free_segments(&dir, 2, segment_bytes);
                if let Some(f) = followed.as_mut() {
                    f.poll();
                }
            }
            let _ = crate::segment::remove_free_segments(&dir);
            if let Some(f) = followed.as_mut() {
                f.drain();
            }
            followed
        })
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env(
            "LD_PRELOAD",
            prepend_preload(lib, std::env::var_os("LD_PRELOAD")),
        )
        .env(tapline_record::settings::SPOOL_DIR.name(), spool_dir);
    let status = cmd.status().map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    });
    child_done.store(true, Ordering::SeqCst);
    let followed = refill.join().ok().flatten();
    let status = status?;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => EXIT_FAILURE,
    };
    Ok((code, followed))
}

/// The records `tapline run` read from shared segments while the program ran (those
/// segments were handed back for reuse or deleted, so they are not read again at the
/// end): per segment name, the records as frames.
struct Followed {
    follower: crate::segment::SegmentFollower,
    frames: std::collections::BTreeMap<String, Vec<u8>>,
}

impl Followed {
    fn new(dir: &Path) -> Followed {
        Followed {
            follower: crate::segment::SegmentFollower::new(dir, true),
            frames: std::collections::BTreeMap::new(),
        }
    }

    fn poll(&mut self) {
        let frames = &mut self.frames;
        let _ = self.follower.poll(&mut |name, rec| {
            let out = frames.entry(name.to_owned()).or_default();
            out.extend_from_slice(&rec.header.encode(tapline_record::MAGIC));
            out.extend_from_slice(rec.payload);
        });
    }

    /// After the program exited: reads until nothing new comes (its writers are gone,
    /// so every segment finishes).
    fn drain(&mut self) {
        let mut quiet = 0;
        while quiet < 2 {
            let before = self.follower.stats;
            self.poll();
            quiet = if self.follower.stats == before {
                quiet + 1
            } else {
                0
            };
        }
    }

    /// The spool: record files from the directory, segments from what was followed.
    fn into_spool(self, dir: &Path) -> Result<Spool, crate::spool::SpoolError> {
        let mut spool = Spool::read_dir_files(dir)?;
        let stats = self.follower.stats;
        for (i, (name, frames)) in self.frames.iter().enumerate() {
            spool.add_file(name, frames);
            if i == 0 {
                if let Some(f) = spool.files.last_mut() {
                    f.skipped_stretches += stats.holes + stats.corrupt;
                    f.skipped_bytes += stats.hole_bytes + stats.garbage_bytes;
                }
            }
        }
        Ok(spool)
    }
}

/// `libtapline.so`: `$TAPLINE_LIB`, else next to our executable. Absolute, so that it
/// does not depend on the program's working directory.
fn find_library() -> Result<PathBuf, RunError> {
    let path = match std::env::var_os("TAPLINE_LIB").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().map_err(RunError::NoExePath)?;
            exe.with_file_name("libtapline.so")
        }
    };
    if !path.is_file() {
        return Err(RunError::LibraryNotFound(path));
    }
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// `LD_PRELOAD` with `lib` first and the existing entries after it.
pub fn prepend_preload(lib: &Path, existing: Option<OsString>) -> OsString {
    let mut v = lib.as_os_str().to_owned();
    if let Some(e) = existing.filter(|e| !e.is_empty()) {
        v.push(":");
        v.push(e);
    }
    v
}

/// `LD_PRELOAD` without its libtapline entries, or `None` when it has none. ld.so
/// separates entries with colons or spaces.
pub fn preload_without_tapline(value: &OsStr) -> Option<OsString> {
    let entries: Vec<&[u8]> = value
        .as_bytes()
        .split(|&b| b == b':' || b == b' ')
        .filter(|e| !e.is_empty())
        .collect();
    let is_ours = |e: &&[u8]| e.windows(10).any(|w| w == b"libtapline");
    if !entries.iter().any(is_ours) {
        return None;
    }
    let kept: Vec<&[u8]> = entries.into_iter().filter(|e| !is_ours(e)).collect();
    Some(OsString::from_vec(kept.join(&b':')))
}

/// The spool directory of one `run`, and whether we made it (and so may delete it).
struct SpoolDir {
    path: PathBuf,
    created: bool,
}

impl SpoolDir {
    fn create(given: Option<&Path>) -> Result<SpoolDir, RunError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        if let Some(dir) = given {
            let err = |source| RunError::SpoolDir {
                dir: dir.to_owned(),
                source,
            };
            return match builder.create(dir) {
                Ok(()) => Ok(SpoolDir {
                    path: dir.to_owned(),
                    created: true,
                }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
                    Ok(SpoolDir {
                        path: dir.to_owned(),
                        created: false,
                    })
                }
                Err(e) => Err(err(e)),
            };
        }
        let base = std::env::var_os("TMPDIR")
            .filter(|t| !t.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last = None;
        for attempt in 0..100u32 {
            let path = base.join(format!(
                "tapline-{}-{nanos:09}-{attempt}",
                std::process::id()
            ));
            // create (not create_all): fails if the name exists, so nobody can have
            // prepared it for us.
            match builder.create(&path) {
                Ok(()) => {
                    return Ok(SpoolDir {
                        path,
                        created: true,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(RunError::SpoolDir {
                        dir: path,
                        source: e,
                    })
                }
            }
        }
        Err(RunError::SpoolDir {
            dir: base,
            source: last.unwrap_or_else(|| io::Error::other("no free name")),
        })
    }

    /// Deletes the spool: all of it when we created the directory; only the spool
    /// files in a directory the user named (it may hold other things).
    fn remove(&self) {
        if self.created {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                eprintln!("tapline: cannot remove spool {}: {e}", self.path.display());
            }
            return;
        }
        if let Ok(listing) = std::fs::read_dir(&self.path) {
            for entry in listing.flatten() {
                let name = entry.file_name();
                let name = name.as_bytes();
                if name.ends_with(b".tlr") || name.ends_with(b".tls") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn run_command_lines() {
        let inv = parse(args(&[
            "run",
            "--format",
            "json",
            "--keep-spool",
            "--",
            "curl",
            "-s",
            "http://x",
        ]))
        .expect("valid");
        let Invocation::Run(o) = inv else {
            panic!("not run: {inv:?}")
        };
        assert_eq!(o.report.format, Format::Json);
        assert!(o.keep_spool);
        assert_eq!(o.command, args(&["curl", "-s", "http://x"]));

        let Ok(Invocation::Run(o)) = parse(args(&["run", "--otlp", "--", "true"])) else {
            panic!()
        };
        assert_eq!(o.otlp, Some(None));
        let Ok(Invocation::Run(o)) = parse(args(&["run", "--otlp", "http://c:4318", "--", "true"]))
        else {
            panic!()
        };
        assert_eq!(o.otlp, Some(Some("http://c:4318".to_owned())));
        let Ok(Invocation::Run(o)) = parse(args(&[
            "run",
            "--otlp=http://c",
            "-o",
            "/tmp/r",
            "ls",
            "-l",
        ])) else {
            panic!()
        };
        assert_eq!(o.otlp, Some(Some("http://c".to_owned())));
        assert_eq!(o.report.output, Some(PathBuf::from("/tmp/r")));
        assert_eq!(o.command, args(&["ls", "-l"]));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["run"][..],
            &["run", "--"],
            &["run", "--bogus", "--", "true"],
            &["run", "--format", "xml", "--", "true"],
            &["show"],
            &["show", "a", "b"],
            &["frobnicate"],
            &["extension", "--what"],
        ] {
            assert!(parse(args(bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn show_and_others() {
        assert_eq!(
            parse(args(&["show", "-f", "har", "/d"])),
            Ok(Invocation::Show(ShowOptions {
                report: ReportOptions {
                    format: Format::Har,
                    output: None
                },
                dir: PathBuf::from("/d"),
            }))
        );
        assert_eq!(parse(args(&["--help"])), Ok(Invocation::Help));
        assert_eq!(parse(args(&["-h"])), Ok(Invocation::Help));
        assert_eq!(parse(args(&["--version"])), Ok(Invocation::Version));
        assert_eq!(parse(args(&["extension"])), Ok(Invocation::Extension));
    }

    #[test]
    fn preload_lists() {
        assert_eq!(preload_without_tapline(OsStr::new("/a/x.so")), None);
        assert_eq!(
            preload_without_tapline(OsStr::new("/opt/libtapline.so:/a/x.so /b/y.so")),
            Some(OsString::from("/a/x.so:/b/y.so"))
        );
        assert_eq!(
            preload_without_tapline(OsStr::new("libtapline.so")),
            Some(OsString::new())
        );
        assert_eq!(
            prepend_preload(Path::new("/l/libtapline.so"), Some("/a.so".into())),
            OsString::from("/l/libtapline.so:/a.so")
        );
        assert_eq!(
            prepend_preload(Path::new("/l/libtapline.so"), Some("".into())),
            OsString::from("/l/libtapline.so")
        );
    }
}

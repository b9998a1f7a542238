//! The command line as typed: subcommands, options, and what is wrong with them
//! ([`UsageError`], exit status 2).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::report::{self, Format};

pub const USAGE: &str = "\
tapline: show the HTTP calls any program makes

usage:
  tapline run [OPTIONS] -- CMD [ARGS...]   run CMD with capture, reporting its HTTP exchanges
  tapline show [OPTIONS] DIR               report what a spool directory holds
  tapline show -F [OPTIONS] DIR            follow a spool other processes write (tail -f)
  tapline show --records [-o PATH] DIR     print the spool's records as JSON lines (stdout)
  tapline extension                        run as an AWS Lambda extension
  tapline --help | --version

options:
  -f, --format table|json|har|html
                                report format (default: table); html: one
                                self-contained page, best with -o FILE.html
  -o, --output PATH             write the report to PATH instead of stderr
      --otlp [ENDPOINT]         (run) also export OTLP traces
      --spool-dir DIR           (run) spool directory to use (default: a private one)
      --keep-spool              (run) keep the spool directory afterwards
  -F, --follow                  (show) print exchanges as they complete until Ctrl-C or
                                SIGTERM, handing finished segments back (the spool stays
                                bounded); what is still open then is printed in its state
      --records                 (show) every record, every field: one JSON object a line
                                (type, file, index, header fields, payload fields; bytes
                                as text when UTF-8, else base64 with <name>_encoding)

output:
  run (and show -F) print each exchange when it completes (its response ended, or it
  failed), in completion order, while the program runs; exchanges still open at the end
  are printed with their state (no response, incomplete response). HAR is streamed
  entry by entry and closed at the end. Without -o a summary line follows: exchanges,
  errors, bytes each way, notices, records dropped. Nothing is kept once printed.
  On a terminal the table fits its width (long URLs shortened in the middle) and
  colours status classes and errors (not with NO_COLOR set); written to a file or a
  pipe it has full URLs and no colours.

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
    /// `--follow`: report as the spool is written, until SIGINT/SIGTERM.
    pub follow: bool,
}

/// `tapline show --records`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordsOptions {
    /// Where the JSON lines go (default: stdout).
    pub output: Option<PathBuf>,
    pub dir: PathBuf,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    Run(RunOptions),
    Show(ShowOptions),
    Records(RecordsOptions),
    Extension,
    Help,
    Version,
}

/// The command line could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

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
        "show" => parse_show(&mut p),
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

fn parse_show(p: &mut lexopt::Parser) -> Result<Invocation, UsageError> {
    use lexopt::prelude::*;
    let mut report = ReportOptions::default();
    let mut dir = None;
    let mut records = false;
    let mut follow = false;
    while let Some(arg) = p.next()? {
        if let Some(which) = report_option(&arg) {
            set_report_option(p, which, &mut report)?;
            continue;
        }
        match arg {
            Long("records") => records = true,
            Short('F') | Long("follow") => follow = true,
            Value(v) if dir.is_none() => dir = Some(PathBuf::from(v)),
            Short('h') | Long("help") => return Err(usage("")),
            other => return Err(other.unexpected().into()),
        }
    }
    let dir = dir.ok_or_else(|| usage("show: missing the spool directory (tapline show DIR)"))?;
    if records && follow {
        return Err(usage("show: --records and --follow do not go together"));
    }
    Ok(if records {
        Invocation::Records(RecordsOptions {
            output: report.output,
            dir,
        })
    } else {
        Invocation::Show(ShowOptions {
            report,
            dir,
            follow,
        })
    })
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
                follow: false,
            }))
        );
        let Ok(Invocation::Show(o)) = parse(args(&["show", "-F", "--format", "json", "/d"])) else {
            panic!()
        };
        assert!(o.follow && o.report.format == Format::Json);
        assert!(parse(args(&["show", "--follow", "--records", "/d"])).is_err());
        assert_eq!(parse(args(&["--help"])), Ok(Invocation::Help));
        assert_eq!(parse(args(&["-h"])), Ok(Invocation::Help));
        assert_eq!(parse(args(&["--version"])), Ok(Invocation::Version));
        assert_eq!(parse(args(&["extension"])), Ok(Invocation::Extension));
    }
}

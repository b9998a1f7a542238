//! The traced program: the library preloaded, the spool's segments made ahead and
//! followed (and reported) while it runs, Ctrl-C and Ctrl-\\ left to it, its exit status kept.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::os::unix::fs::OpenOptionsExt;
use tapline_record as rec;
use tapline_record::NoticeKind;

use crate::spool::segment;

use super::args::RunOptions;
use super::error::{RunError, EXIT_FAILURE};
use super::live::LiveReport;

/// Spawns the program with the library preloaded and waits for it. Ctrl-C / Ctrl-\
/// reach the program from the terminal; tapline ignores them until it has exited, then
/// they act normally again (so a hung report can still be interrupted).
pub(super) fn run_child(
    o: &RunOptions,
    lib: &Path,
    spool_dir: &Path,
    live: Option<LiveReport<'static>>,
) -> Result<(i32, Option<LiveReport<'static>>), RunError> {
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
    // follows the spool as the program fills it, reporting each exchange as it completes
    // (and, unless the spool is to be kept as written, handing finished segments back
    // for reuse: a long run stays within a few segments instead of claiming new ones up
    // to the directory bound).
    let segment_bytes = std::env::var(tapline_record::settings::SEGMENT_BYTES.name())
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(segment::DEFAULT_SEGMENT_BYTES);
    let _ = segment::make_free_segments(spool_dir, 2, segment_bytes);
    let follower = {
        let done = Arc::clone(&child_done);
        let dir = spool_dir.to_owned();
        let mut live = live;
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let _ = segment::make_free_segments(&dir, 2, segment_bytes);
                if let Some(l) = live.as_mut() {
                    l.poll();
                }
            }
            let _ = segment::remove_free_segments(&dir);
            if let Some(l) = live.as_mut() {
                l.drain();
            }
            live
        })
    };
    let mut cmd = Command::new(program);
    if let Some(agent) = java_agent_arg(program, args, lib) {
        cmd.arg(agent);
    }
    cmd.args(args)
        .env(
            "LD_PRELOAD",
            prepend_preload(lib, std::env::var_os("LD_PRELOAD")),
        )
        .env(tapline_record::settings::SPOOL_DIR.name(), spool_dir);
    let blind_spot = blind_spot(program);
    let status = cmd
        .spawn()
        .inspect(|child| {
            if let Some((kind, path)) = &blind_spot {
                let _ = write_notice(spool_dir, *kind, child.id(), path);
            }
        })
        .and_then(|mut child| child.wait())
        .map_err(|source| RunError::Spawn {
            program: program.clone(),
            source,
        });
    child_done.store(true, Ordering::SeqCst);
    let live = follower.join().ok().flatten();
    let status = status?;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => EXIT_FAILURE,
    };
    Ok((code, live))
}

/// Why the preload will not see CMD, if it will not (the exec hooks ask the same of
/// every program a traced process starts): its kind and the path found along `PATH`.
fn blind_spot(program: &OsStr) -> Option<(NoticeKind, PathBuf)> {
    use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
    let path = find_program(program)?;
    let file = std::fs::File::open(&path).ok()?;
    let meta = file.metadata().ok()?;
    // `/proc/self` belongs to our effective ids: the loader drops LD_PRELOAD when a
    // set-id bit changes them.
    let me = std::fs::metadata("/proc/self").ok()?;
    let mode = meta.permissions().mode();
    if (mode & 0o4000 != 0 && meta.uid() != me.uid())
        || (mode & 0o2000 != 0 && meta.gid() != me.gid())
    {
        return Some((NoticeKind::SetId, path));
    }
    let kind = tapline_record::program::elf_blind_spot(&mut |buf, off| {
        file.read_at(buf, off).unwrap_or(0)
    })?;
    Some((kind, path))
}

/// `-agentpath:<lib>` when CMD is a `java` launcher (the name `java`, an ELF that needs
/// `libjli.so`: the exec hooks ask the same of the JVMs a traced process starts), no
/// argument of it loads libtapline already, and `TAPLINE_JAVA` is not `0`. It goes
/// first, before the program's own arguments: the JVM then loads the library as its
/// JVMTI agent too. Not through `JAVA_TOOL_OPTIONS`, which makes the JVM print
/// `Picked up JAVA_TOOL_OPTIONS` on stderr.
fn java_agent_arg(program: &OsStr, args: &[OsString], lib: &Path) -> Option<OsString> {
    use std::os::unix::fs::FileExt;
    use tapline_record::program::{is_java_launcher, is_tapline_agent_arg, AGENTPATH};
    if std::env::var_os(tapline_record::settings::JAVA.name()).is_some_and(|v| v == "0")
        || args.iter().any(|a| is_tapline_agent_arg(a.as_bytes()))
    {
        return None;
    }
    let path = find_program(program)?;
    let file = std::fs::File::open(&path).ok()?;
    if !is_java_launcher(path.as_os_str().as_bytes(), &mut |buf, off| {
        file.read_at(buf, off).unwrap_or(0)
    }) {
        return None;
    }
    let mut arg = OsString::from_vec(AGENTPATH.to_vec());
    arg.push(lib);
    Some(arg)
}

/// `program` as `execvp` finds it: itself when it holds a `/`, else the first
/// executable file of that name along `PATH`.
fn find_program(program: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Writes a `Notice` record about process `pid` into a record file of our own
/// (`<our pid>-0.tlr`), which the reader reads like the library's.
fn write_notice(spool_dir: &Path, kind: NoticeKind, pid: u32, path: &Path) -> io::Result<()> {
    use std::io::Write;
    let program = &path.as_os_str().as_bytes()[..path.as_os_str().len().min(rec::Notice::MAX_PATH)];
    let fixed = rec::Notice {
        kind,
        flags: 0,
        path_len: program.len() as u16,
        pid,
    }
    .encode();
    let wall_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut h = rec::Header::new(
        rec::RecordType::Notice,
        fixed.len() + program.len(),
        wall_ns,
        0,
    );
    h.pid = std::process::id();
    let (head, pad) = h.seal(&[&fixed, program]);
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(&fixed);
    bytes.extend_from_slice(program);
    bytes.extend_from_slice(rec::Header::padding(pad));
    let name = spool_dir.join(format!("{}-0.tlr", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(name)?
        .write_all(&bytes)
}

/// `libtapline.so`: `$TAPLINE_LIB`, else next to our executable. Absolute, so that it
/// does not depend on the program's working directory.
pub(super) fn find_library() -> Result<PathBuf, RunError> {
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
pub(crate) fn prepend_preload(lib: &Path, existing: Option<OsString>) -> OsString {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_gets_the_agent_first_once() {
        let lib = Path::new("/l/libtapline.so");
        let arg = java_agent_arg(OsStr::new("java"), &["-version".into()], lib);
        assert_eq!(
            arg,
            Some(OsString::from("-agentpath:/l/libtapline.so")),
            "Debian's JDK 17 (`java` along PATH) missing? run scripts/setup"
        );
        let again = [
            "-agentpath:/opt/tapline/libtapline.so".into(),
            "Main".into(),
        ];
        assert_eq!(java_agent_arg(OsStr::new("java"), &again, lib), None);
        assert_eq!(java_agent_arg(OsStr::new("javac"), &[], lib), None);
        assert_eq!(java_agent_arg(OsStr::new("sh"), &[], lib), None);
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

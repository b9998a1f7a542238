use super::*;
use tapline_record::program::{PT_INTERP, PT_NOTE};

/// A minimal little-endian ELF64 executable image: the program headers given as
/// (type, offset, size), notes and a section name table placed where they say.
fn elf(phdrs: &[(u32, u64, u64)], blobs: &[(usize, &[u8])], shstrtab: Option<&[u8]>) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[16..18].copy_from_slice(&3u16.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
    for (i, &(t, off, size)) in phdrs.iter().enumerate() {
        let h = 64 + i * 56;
        b[h..h + 4].copy_from_slice(&t.to_le_bytes());
        b[h + 8..h + 16].copy_from_slice(&off.to_le_bytes());
        b[h + 32..h + 40].copy_from_slice(&size.to_le_bytes());
    }
    for &(at, bytes) in blobs {
        b[at..at + bytes.len()].copy_from_slice(bytes);
    }
    if let Some(names) = shstrtab {
        // Section header table at 2048: section 0 null, section 1 the name table at 3072.
        b[40..48].copy_from_slice(&2048u64.to_le_bytes());
        b[58..60].copy_from_slice(&64u16.to_le_bytes());
        b[60..62].copy_from_slice(&2u16.to_le_bytes());
        b[62..64].copy_from_slice(&1u16.to_le_bytes());
        let sh = 2048 + 64;
        b[sh + 24..sh + 32].copy_from_slice(&3072u64.to_le_bytes());
        b[sh + 32..sh + 40].copy_from_slice(&(names.len() as u64).to_le_bytes());
        b[3072..3072 + names.len()].copy_from_slice(names);
    }
    b
}

fn kind_of(image: &[u8]) -> Option<NoticeKind> {
    elf_blind_spot(&mut |buf: &mut [u8], off: u64| {
        let off = (off as usize).min(image.len());
        let n = buf.len().min(image.len() - off);
        buf[..n].copy_from_slice(&image[off..off + n]);
        n
    })
}

fn go_note() -> Vec<u8> {
    let mut n = Vec::new();
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(&8u32.to_le_bytes());
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(b"Go\0\0");
    n.extend_from_slice(b"buildid!");
    n
}

#[test]
fn interp_means_seen_none_means_static() {
    assert_eq!(
        kind_of(&elf(&[(PT_INTERP, 1024, 28), (1, 0, 4096)], &[], None)),
        None
    );
    assert_eq!(
        kind_of(&elf(&[(1, 0, 4096)], &[], None)),
        Some(NoticeKind::StaticExecutable)
    );
}

#[test]
fn go_is_known_by_its_note_or_its_buildinfo_section() {
    let gnu = {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&16u32.to_le_bytes());
        n.extend_from_slice(&3u32.to_le_bytes());
        n.extend_from_slice(b"GNU\0");
        n.extend_from_slice(&[7; 16]);
        n
    };
    let mut notes = gnu.clone();
    notes.extend_from_slice(&go_note());
    let with_note = elf(
        &[(PT_INTERP, 1024, 28), (PT_NOTE, 1536, notes.len() as u64)],
        &[(1536, &notes)],
        None,
    );
    assert_eq!(kind_of(&with_note), Some(NoticeKind::GoProgram));
    // A GNU note alone says nothing.
    let gnu_only = elf(
        &[(PT_INTERP, 1024, 28), (PT_NOTE, 1536, gnu.len() as u64)],
        &[(1536, &gnu)],
        None,
    );
    assert_eq!(kind_of(&gnu_only), None);
    let names = b"\0.text\0.go.buildinfo\0.shstrtab\0";
    let with_section = elf(&[(1, 0, 4096)], &[], Some(names));
    assert_eq!(kind_of(&with_section), Some(NoticeKind::GoProgram));
    let other = elf(
        &[(PT_INTERP, 1024, 28)],
        &[],
        Some(b"\0.text\0.go.buildinfo.x\0"),
    );
    assert_eq!(kind_of(&other), None);
}

#[test]
fn what_is_not_an_elf64_executable_is_not_our_call() {
    assert_eq!(kind_of(b"#!/bin/sh\necho hi\n"), None);
    assert_eq!(kind_of(&[]), None);
    let mut elf32 = elf(&[(1, 0, 4096)], &[], None);
    elf32[4] = 1;
    assert_eq!(kind_of(&elf32), None);
    let mut relocatable = elf(&[(1, 0, 4096)], &[], None);
    relocatable[16] = 1;
    assert_eq!(kind_of(&relocatable), None);
    // Program headers past the end of the file: cannot tell.
    let mut cut = elf(&[(1, 0, 4096)], &[], None);
    cut[32..40].copy_from_slice(&100_000u64.to_le_bytes());
    assert_eq!(kind_of(&cut), None);
}

#[test]
fn a_dynamic_program_on_this_machine_is_seen() {
    let path = c"/bin/sh";
    assert_eq!(blind_spot_at(libc::AT_FDCWD, path.as_ptr()), None);
    assert_eq!(
        blind_spot_at(libc::AT_FDCWD, c"/nonexistent/x".as_ptr()),
        None
    );
}

#[test]
fn path_search_finds_sh_and_keeps_a_slash_path() {
    let mut out = [0u8; PATH_CAP];
    let n = search_path(b"sh", Some(b"/nonexistent:/bin"), &mut out).expect("sh");
    assert_eq!(&out[..n], b"/bin/sh");
    assert_eq!(out[n], 0);
    let n = search_path(b"./x", None, &mut out).expect("slash");
    assert_eq!(&out[..n], b"./x");
    assert_eq!(
        search_path(b"no-such-program-here", Some(b"/bin"), &mut out),
        None
    );
}

#[test]
fn child_env_gets_the_preload_back_only_when_it_lacks_it() {
    init(
        [
            b"PATH=/bin".as_slice(),
            b"LD_PRELOAD=/x/libtapline.so",
            b"TAPLINE_SPOOL_DIR=/tmp/s",
            b"TAPLINE_MAX_BODY=10",
        ]
        .into_iter(),
        true,
        None,
    );
    let strings = |v: *const *const c_char| {
        let mut out = Vec::new();
        let mut i = 0;
        // SAFETY: a NULL-terminated array built by `build` or by this test.
        unsafe {
            while !(*v.add(i)).is_null() {
                out.push(c_bytes(*v.add(i), 4096).to_vec());
                i += 1;
            }
        }
        out
    };
    let mut env = ChildEnv::default();
    let given = [
        c"HOME=/h".as_ptr(),
        c"TAPLINE_MAX_BODY=5".as_ptr(),
        core::ptr::null(),
    ];
    // SAFETY: a NULL-terminated array of C strings.
    let built = unsafe { env.build(given.as_ptr()) }.expect("built");
    let got = strings(built);
    assert_eq!(
        got,
        vec![
            b"HOME=/h".to_vec(),
            b"TAPLINE_MAX_BODY=5".to_vec(),
            b"LD_PRELOAD=/x/libtapline.so".to_vec(),
            b"TAPLINE_SPOOL_DIR=/tmp/s".to_vec(),
        ]
    );
    // An empty and a NULL environment get the saved entries.
    // SAFETY: NULL is allowed.
    let built = unsafe { env.build(core::ptr::null()) }.expect("built");
    assert_eq!(strings(built).len(), 3);
    // Any LD_PRELOAD, even without us: left as it is.
    let given = [c"LD_PRELOAD=".as_ptr(), core::ptr::null()];
    // SAFETY: as above.
    assert!(unsafe { env.build(given.as_ptr()) }.is_none());
    // TAPLINE_FOLLOW_EXEC=0: never.
    init(
        [b"LD_PRELOAD=/x/libtapline.so".as_slice()].into_iter(),
        false,
        None,
    );
    // SAFETY: as above.
    assert!(unsafe { env.build(core::ptr::null()) }.is_none());
}

/// The strings of a NULL-terminated array.
fn argv_strings(v: *const *const c_char) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    // SAFETY: a NULL-terminated array built by `build` or by a test.
    unsafe {
        while !(*v.add(i)).is_null() {
            out.push(c_bytes(*v.add(i), 8192).to_vec());
            i += 1;
        }
    }
    out
}

#[test]
fn java_launchers_get_the_agent_once() {
    init_agent(Some(b"/x/libtapline.so"));
    let java = c"/usr/lib/jvm/java-17-openjdk-amd64/bin/java";
    let javac = c"/usr/lib/jvm/java-17-openjdk-amd64/bin/javac";
    let build = |path: &core::ffi::CStr, argv: &[*const c_char], preloaded: bool| {
        let mut a = JavaArgv::default();
        // SAFETY: NUL-terminated path, NULL-terminated argv of C strings.
        unsafe {
            a.build(
                libc::AT_FDCWD,
                path.as_ptr(),
                path.to_bytes(),
                argv.as_ptr(),
                preloaded,
            )
        }
        .map(argv_strings)
    };
    let argv = [c"java".as_ptr(), c"-version".as_ptr(), core::ptr::null()];
    assert_eq!(
        build(java, &argv, true).expect("JDK 17 missing? run scripts/setup"),
        vec![
            b"java".to_vec(),
            b"-agentpath:/x/libtapline.so".to_vec(),
            b"-version".to_vec()
        ]
    );
    // Only argv[0]: the agent goes after it.
    assert_eq!(build(java, &argv[1..], true).map(|v| v.len()), Some(2));
    // A child without our preload, javac (a libjli launcher too), an argv that loads
    // us already, an empty argv: unchanged.
    assert_eq!(build(java, &argv, false), None);
    assert_eq!(build(javac, &argv, true), None);
    let again = [
        c"java".as_ptr(),
        c"-agentpath:/opt/tapline/libtapline.so".as_ptr(),
        c"Main".as_ptr(),
        core::ptr::null(),
    ];
    assert_eq!(build(java, &again, true), None);
    assert_eq!(build(java, &[core::ptr::null()], true), None);
    // A script called java: unchanged.
    let dir = std::env::temp_dir().join(format!("tapline-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("java");
    std::fs::write(&script, "#!/bin/sh\nexec true\n").unwrap();
    let script_c = std::ffi::CString::new(script.to_str().unwrap()).unwrap();
    assert_eq!(build(&script_c, &argv, true), None);
    std::fs::remove_dir_all(&dir).unwrap();
    // Too many arguments to copy: unchanged.
    let mut long = vec![c"x".as_ptr(); ARGV_CAP + 1];
    long.push(core::ptr::null());
    assert_eq!(build(java, &long, true), None);
}

#[test]
fn env_preloads_us_looks_at_ld_preload_only() {
    let yes = [
        c"A=libtapline".as_ptr(),
        c"LD_PRELOAD=/o/libtapline.so:/b.so".as_ptr(),
        core::ptr::null(),
    ];
    let no = [
        c"A=libtapline".as_ptr(),
        c"LD_PRELOAD=/b.so".as_ptr(),
        core::ptr::null(),
    ];
    // SAFETY: NULL-terminated arrays of C strings, or NULL.
    unsafe {
        assert!(env_preloads_us(yes.as_ptr()));
        assert!(!env_preloads_us(no.as_ptr()));
        assert!(!env_preloads_us(core::ptr::null()));
    }
}

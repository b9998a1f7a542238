"""Fixtures of the arm64 stage (scripts/test): the arm64 layer, arm64 programs, and qemu.
(A module the tests import with `from arm64_env import *`, not a second conftest.py:
tests/*.py import helpers `from conftest`, and a second module of that name would
shadow tests/conftest.py.)

Everything here runs aarch64 code on this x86_64 machine under `qemu-aarch64-static`
(qemu-user: each guest system call becomes a host one, so guests talk to the servers of
tests/conftest.py on 127.0.0.1 as any program does). Always through an explicit
`qemu-aarch64-static` command: no binfmt_misc registration is needed or assumed.

- the layer: `scripts/build-layer` (both zips; the arm64 one built by Debian's rustc-web
  with the multiarch aarch64 std), used as shipped, from `target/layer/<arch>/`;
- arm64 C clients: cross-compiled by `aarch64-linux-gnu-gcc` against the multiarch
  `libc6:arm64` / `libssl-dev:arm64`, run against the same multiarch libraries;
- arm64 `curl` and `python3.11`: Debian's arm64 packages and their dependencies,
  `apt-get download`ed and unpacked with `dpkg-deb -x` into a private sysroot under
  `target/arm64-sysroot/` (nothing is installed into the system), run with
  `qemu-aarch64-static -L <sysroot>`; awslambdaric's aarch64 wheel (PyPI) goes into
  `target/arm64-sysroot/site`. Both are cached; a download is retried, and one that
  still fails fails the tests (never a skip).

Needs what scripts/setup installs: qemu-user-static, gcc-aarch64-linux-gnu,
libssl-dev:arm64, rustc-web + libstd-rust-web-dev:arm64, and apt's arm64 package lists.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, clean_env, require_tool  # tests/conftest.py

ARM64 = Path(__file__).resolve().parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
SYSROOT_CACHE = TARGET / "arm64-sysroot"
# The programs of the private sysroot; their dependency closure comes from apt.
SYSROOT_PACKAGES = ("curl", "python3.11", "libstdc++6")
# In the closure, but nothing a program run here loads (and dpkg/tar are big).
SYSROOT_SKIP = {"dpkg", "tar", "install-info"}
QEMU_TIMEOUT = 180  # per emulated program: emulation is slow, a hang must still end


def _retry(what, argv, cwd=None, attempts=3):
    """Runs a download command up to `attempts` times; fails the test run loudly."""
    err = ""
    for i in range(attempts):
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=600)
        if proc.returncode == 0:
            return proc
        err = proc.stdout[-2000:] + proc.stderr[-2000:]
        time.sleep(2 * (i + 1))
    pytest.fail(f"{what} failed {attempts} times: {' '.join(argv[:4])} ...\n{err}",
                pytrace=False)


@pytest.fixture(scope="session")
def qemu():
    return require_tool("qemu-aarch64-static")


@pytest.fixture(scope="session")
def layers():
    """{"x86_64": Path, "arm64": Path}: the unpacked layers `scripts/build-layer` made
    (`extensions/tapline`, `tapline/libtapline.so`, `tapline/wrapper.sh`); the zips are
    beside them in target/layer/."""
    require_tool("aarch64-linux-gnu-gcc")
    subprocess.run([str(REPO / "scripts" / "build-layer")], cwd=REPO, check=True,
                   stdin=subprocess.DEVNULL)
    out = REPO / "target" / "layer"
    return {arch: out / arch for arch in ("x86_64", "arm64")}


@pytest.fixture(scope="session")
def arm64_lib(layers):
    return layers["arm64"] / "tapline" / "libtapline.so"


@pytest.fixture(scope="session")
def arm64_tapline(layers):
    return layers["arm64"] / "extensions" / "tapline"


@pytest.fixture(scope="session")
def arm64_cc(tmp_path_factory):
    """compile(name, *libs) -> tests/arm64/clients/<name>.c (or, when there is none,
    tests/clients/<name>.c) built for aarch64."""
    cc = require_tool("aarch64-linux-gnu-gcc")
    outdir = tmp_path_factory.mktemp("arm64-bin")
    built = {}

    def compile_(name, *libs):
        if name not in built:
            exe = outdir / name
            src = ARM64 / "clients" / f"{name}.c"
            if not src.exists():
                src = ARM64.parent / "clients" / f"{name}.c"
            subprocess.run([cc, "-O1", "-Wall", "-Werror", "-pthread", "-o", str(exe),
                            str(src), *libs],
                           check=True, stdin=subprocess.DEVNULL)
            built[name] = exe
        return built[name]
    return compile_


def _closure():
    """The arm64 packages SYSROOT_PACKAGES need, as apt resolves them, with versions."""
    argv = ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
            "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
            *(f"{p}:arm64" for p in SYSROOT_PACKAGES)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         stdin=subprocess.DEVNULL).stdout
    names = sorted({line.strip() for line in out.splitlines()
                    if line.endswith(":arm64") and not line.startswith((" ", "<"))})
    names = [n for n in names if n.split(":")[0] not in SYSROOT_SKIP]
    if f"{SYSROOT_PACKAGES[0]}:arm64" not in names:
        pytest.fail("apt knows no arm64 packages: run scripts/setup (dpkg --add-architecture "
                    "arm64; apt-get update)", pytrace=False)
    policy = subprocess.run(["apt-cache", "policy", *names], capture_output=True, text=True,
                            check=True, stdin=subprocess.DEVNULL).stdout
    versions, current = {}, None
    for line in policy.splitlines():
        if not line.startswith(" "):
            current = line.rstrip(":")
        elif line.strip().startswith("Candidate:") and current:
            versions[current] = line.split(":", 1)[1].strip()
    return [(n, versions[n]) for n in names]


@pytest.fixture(scope="session")
def arm64_sysroot():
    """target/arm64-sysroot/root: Debian's arm64 curl and python3.11 with every library
    they load, unpacked (not installed). Built once and kept (`rm -r` it to refresh)."""
    stamp = SYSROOT_CACHE / "root.stamp"  # what it holds, written once it is complete
    root = SYSROOT_CACHE / "root"
    if root.is_dir() and stamp.exists():
        return root
    require_tool("apt-get")
    require_tool("dpkg-deb")
    pkgs = _closure()
    want = "\n".join(f"{n}={v}" for n, v in pkgs)
    debs = SYSROOT_CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)

    def deb_of(name, version):
        # apt-get download names files <pkg>_<version with ':' as %3a>_arm64.deb
        return debs / f"{name.split(':')[0]}_{version.replace(':', '%3a')}_arm64.deb"

    missing = [f"{n}={v}" for n, v in pkgs if not deb_of(n, v).exists()]
    if missing:
        _retry("apt-get download", ["apt-get", "download", "-q", *missing], cwd=debs)
    tmp = SYSROOT_CACHE / "root.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for n, v in pkgs:
        deb = deb_of(n, v)
        if not deb.exists():
            pytest.fail(f"apt-get download left no {deb.name}", pytrace=False)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True,
                       stdin=subprocess.DEVNULL)
    # An empty loader cache: the guest's ld.so then searches the sysroot's own
    # directories instead of reading the host's /etc/ld.so.cache through qemu.
    (tmp / "etc").mkdir(exist_ok=True)
    (tmp / "etc" / "ld.so.cache").write_bytes(b"")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    stamp.write_text(want)
    return root


@pytest.fixture(scope="session")
def arm64_site():
    """target/arm64-sysroot/site: awslambdaric (aarch64 wheel, CPython 3.11) and its
    dependencies, for the sysroot's python3.11."""
    site = SYSROOT_CACHE / "site"
    if (site / "awslambdaric" / "__init__.py").exists():
        return site
    tmp = SYSROOT_CACHE / "site.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    _retry("pip install (aarch64 wheels)",
           [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
            "--target", str(tmp), "--only-binary=:all:", "--platform",
            "manylinux2014_aarch64", "--python-version", "3.11", "--implementation", "cp",
            "awslambdaric>=4,<5"])
    shutil.rmtree(site, ignore_errors=True)
    tmp.rename(site)
    return site


class Arm64:
    """Runs arm64 programs under qemu with the arm64 library preloaded."""

    def __init__(self, qemu, lib, tmp_path):
        self.qemu, self.lib, self.tmp_path = qemu, lib, tmp_path
        self.n = 0

    def run(self, argv, spool=None, sysroot=None, env=None, preload=True):
        """(CompletedProcess, spool dir): `argv` under qemu (`-L sysroot` if given)."""
        self.n += 1
        spool = spool or self.tmp_path / f"spool-{self.n}"
        e = clean_env(env)
        e["TAPLINE_SPOOL_DIR"] = str(spool)
        if preload:
            # qemu-aarch64-static is static: the host's ld.so never reads LD_PRELOAD;
            # the variable reaches the guest's.
            e["LD_PRELOAD"] = str(self.lib)
        cmd = [self.qemu, *(["-L", str(sysroot)] if sysroot else []), *map(str, argv)]
        proc = subprocess.run(cmd, env=e, capture_output=True, timeout=QEMU_TIMEOUT,
                              stdin=subprocess.DEVNULL)
        assert b"cannot be preloaded" not in proc.stderr, proc.stderr.decode(errors="replace")
        return proc, spool


@pytest.fixture
def arm64(qemu, arm64_lib, tmp_path):
    return Arm64(qemu, arm64_lib, tmp_path)


def show_json(tapline, spool, runner=()):
    """The exchanges of a spool, as `tapline show --format json --output FILE` writes them."""
    out = Path(f"{spool}.json")
    subprocess.run([*map(str, runner), str(tapline), "show", "--format", "json",
                    "--output", str(out), str(spool)], capture_output=True, check=True,
                   stdin=subprocess.DEVNULL, timeout=QEMU_TIMEOUT)
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]

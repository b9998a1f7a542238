"""arm64 Lambda: the arm64 layer in the Lambda emulator, as a Graviton function runs it.

The simulator (tests/lambda_sim, x86_64: it plays AWS's side) runs unchanged; the
extension is the arm64 `extensions/tapline` of the arm64 layer, and the runtime is the
private sysroot's arm64 `python3.11` with awslambdaric's aarch64 wheel, started through
the layer's `wrapper.sh` (dash) — both under `qemu-aarch64-static -L <sysroot>`. The
wrapper's `exec` reaches qemu, a static binary the host's loader never sees, so
`LD_PRELOAD` (the arm64 library) is honoured by the guest's loader, as on Graviton.
"""

import json
import os
import sys

import pytest

from conftest import REPO, require_tool
from arm64_env import *  # noqa: F401,F403  (fixtures)

sys.path.insert(0, str(REPO / "tests" / "lambda_sim"))
from harness import PLANTED, Lambda, Servers  # noqa: E402


@pytest.fixture(scope="module")
def sim():
    path = REPO / "target" / "release" / "tapline-lambda-sim"
    if not path.exists():
        import subprocess
        subprocess.run(["cargo", "build", "--release", "-p", "tapline-lambda-sim"], cwd=REPO,
                       check=True, stdin=subprocess.DEVNULL)
    return str(path)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    s = Servers(str(tmp_path_factory.mktemp("servers")))
    yield s.info
    s.close()


def test_arm64_extension_exports_every_invocation_with_its_calls(
        sim, servers, layers, arm64_sysroot, arm64_site, qemu, tmp_path):
    require_tool("dash")
    d = str(tmp_path / "env")
    os.makedirs(d)
    layer = layers["arm64"]
    staged = tmp_path / "layer"  # the two binaries where the harness looks for them
    staged.mkdir()
    os.symlink(layer / "extensions" / "tapline", staged / "tapline")
    os.symlink(layer / "tapline" / "libtapline.so", staged / "libtapline.so")
    # The simulator's deadline is the emulated runtime's: slow, not late.
    env = Lambda(None, servers, d, sim=sim, layer_dir=str(staged), timeout_ms=120000,
                 runner=[qemu, "-L", str(arm64_sysroot)],
                 runtime=[str(arm64_sysroot / "usr" / "bin" / "python3.11")],
                 pythonpath=[str(arm64_site)], rt_env={"PYTHONNOUSERSITE": "1"})
    try:
        results = []
        for n in range(3):
            rid, resp, _ = env.invoke({"n": n})
            assert resp[2] == "success", env.logs()
            body = json.loads(resp[4])
            assert body["statuses"] == [200, 200], body
            results.append(rid)
        env.shutdown()
        assert env.extension.wait(timeout=120) == 0, env.logs()
        spans = env.spans()
        log = env.logs()
        for n, rid in enumerate(results):
            inv = [s for s in spans if s["kind"] == 2
                   and s["attributes"].get("faas.invocation_id") == rid]
            assert len(inv) == 1, (rid, spans, log)
            assert inv[0]["attributes"]["faas.coldstart"] is (n == 0)
            children = [s for s in spans if s.get("parent_span_id") == inv[0]["span_id"]]
            urls = sorted(c["attributes"].get("url.full", "") for c in children)
            assert len(children) == 2, (children, log)
            assert urls[0].startswith("http://127.0.0.1:") and f"/plain?n={n}" in urls[0]
            assert urls[1].startswith("https://localhost:") and f"/secret?n={n}" in urls[1]
        assert not any("/2018-06-01/runtime/" in s["attributes"].get("url.full", "")
                       for s in spans)
        assert PLANTED not in open(env.otlp_out).read()
    finally:
        env.close()

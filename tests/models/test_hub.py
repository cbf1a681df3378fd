"""The Hugging Face hub code paths against a real HTTP hub on 127.0.0.1 (tests/hub_server.py).

huggingface_hub and datasets talk to the server exactly as to the hub
(HF_ENDPOINT); model pulls, faults and every hub task loader are checked
end to end. Tests that need the real 98 MB smollm2 GGUF are marked slow.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hub_server import HubServer
from w2s_gguf.errors import W2SError
from w2s_gguf.common.network import endpoint_address, hub_reachable

from conftest import invoke_cli

LLAMA2 = ("TheBloke/Llama-2-7B-GGUF", "llama-2-7b.Q4_K_M.gguf", "b4e04e128f421c93a5f1e34ac4d7ca9b0af47b80")
LLAMA1 = ("TheBloke/LLaMA-7b-GGUF", "llama-7b.Q4_K_M.gguf", "0a1200190c8c1baafaa0b496c599ba68ad3d4056")
TINY = ("someone/tiny-GGUF", "tiny.gguf", "c" * 40)
TINY_BYTES = hashlib.sha256(b"seed").digest() * (24 * 2**20 // 32)  # 24 MB: over huggingface_hub's 10 MB chunk


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def point_libraries_at(monkeypatch, endpoint: str, home: Path) -> None:
    """HF_ENDPOINT and caches for this test, also in huggingface_hub/datasets if another test imported them first.

    Both libraries copy these variables into module constants at import, so
    they are imported here, then patched: every test sees the same state.
    """
    import datasets.config as dconfig
    import huggingface_hub.constants as hconst
    from huggingface_hub import hf_api

    env = {"HF_ENDPOINT": endpoint, "HF_HOME": home / "hf", "HF_HUB_CACHE": home / "hf" / "hub",
           "HF_DATASETS_CACHE": home / "hf" / "datasets", "W2S_GGUF_HOME": home / "w2s", "HF_HUB_DISABLE_TELEMETRY": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(hconst, "ENDPOINT", endpoint)
    monkeypatch.setattr(hconst, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hconst, "HF_HUB_CACHE", str(env["HF_HUB_CACHE"]))
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)
    datasets_cache = env["HF_DATASETS_CACHE"]
    for name, value in {"HF_ENDPOINT": endpoint, "HUB_DATASETS_URL": endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
                        "HF_CACHE_HOME": str(env["HF_HOME"]), "HF_DATASETS_CACHE": datasets_cache,
                        "HF_MODULES_CACHE": env["HF_HOME"] / "modules", "DOWNLOADED_DATASETS_PATH": datasets_cache / "downloads",
                        "EXTRACTED_DATASETS_PATH": datasets_cache / "downloads" / "extracted",
                        "HF_HUB_OFFLINE": False, "HF_DATASETS_OFFLINE": False}.items():
        monkeypatch.setattr(dconfig, name, value, raising=False)
    hub_reachable.cache_clear()


@pytest.fixture
def hub(request, tmp_path, monkeypatch):
    """The hub on 127.0.0.1; parametrized indirectly with True, it serves large files through a CDN (302)."""
    with HubServer(cdn=getattr(request, "param", False)) as server:
        point_libraries_at(monkeypatch, server.endpoint, tmp_path)
        yield server
    hub_reachable.cache_clear()


def write_registry(path: Path, entries: dict[str, dict]) -> Path:
    lines = []
    for name, fields in entries.items():
        lines.append(f"[models.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def hf_entry(repo_file_rev, sha256=None, size=None) -> dict:
    entry = {"source": "hf", "repo": repo_file_rev[0], "filename": repo_file_rev[1], "revision": repo_file_rev[2]}
    return entry | ({"sha256": sha256} if sha256 else {}) | ({"size": size} if size else {})


def leftovers(root: Path) -> list[str]:
    """Partial or staging files anywhere under the model cache."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".incomplete" in p.name or ".hub-download" in p.parts)


# ---------------------------------------------------------------- hub_reachable

both_ways = pytest.mark.parametrize("hub", [False, True], indirect=True, ids=["direct", "cdn-redirect"])


def test_endpoint_address_reads_host_and_port():
    assert endpoint_address("https://huggingface.co") == ("huggingface.co", 443)
    assert endpoint_address("http://127.0.0.1:8123/") == ("127.0.0.1", 8123)
    assert endpoint_address("https://hf-mirror.example/sub") == ("hf-mirror.example", 443)
    assert endpoint_address("not a url") is None


class SilentHub:
    """A loopback address that accepts TCP connections and never answers (a stuck proxy or server)."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        return self

    def _accept(self):
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.sock.accept()[0])

    def __exit__(self, *exc):
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def recorded_connections(monkeypatch) -> list[tuple]:
    """Every socket.create_connection call from now on: (address, timeout); the calls still go through."""
    calls, real = [], socket.create_connection

    def record(address, timeout=socket.getdefaulttimeout(), *args, **kwargs):
        calls.append((tuple(address), timeout))
        return real(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", record)
    return calls


def test_hub_reachable_asks_hf_endpoint_with_its_timeout(hub, monkeypatch):
    from w2s_gguf.common.network import HUB_TIMEOUT

    calls = recorded_connections(monkeypatch)
    assert hub_reachable() is True
    assert calls == [(endpoint_address(hub.endpoint), HUB_TIMEOUT)]  # one connection, the timeout in force
    assert hub.requests("HEAD") == [("HEAD", "/", "")]  # and an HTTP answer, not just an open port
    assert hub_reachable() is True and len(calls) == 1  # answered once per process and endpoint


def test_offline_mode_never_connects(hub, monkeypatch):
    calls = recorded_connections(monkeypatch)
    for var, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "true")):
        monkeypatch.setenv(var, value)
        assert hub_reachable() is False
        monkeypatch.delenv(var)
    assert calls == []


def test_a_hub_that_accepts_and_never_answers_fails_with_one_line(tiny, tmp_path, monkeypatch, capsys):
    import datasets

    from w2s_gguf.common.network import HUB_TIMEOUT
    from w2s_gguf.tasks import load_task

    def never(*args, **kwargs):
        raise AssertionError("datasets.load_dataset was called though the hub does not answer")

    _, registry, _, models = tiny
    monkeypatch.setattr(datasets, "load_dataset", never)
    with SilentHub() as silent:
        point_libraries_at(monkeypatch, silent.endpoint, tmp_path)
        calls = recorded_connections(monkeypatch)
        code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "tiny", "--registry", registry)
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith(f"error: cannot reach the Hugging Face hub ({silent.endpoint}: did not answer within "
                              f"{HUB_TIMEOUT:g} s) to fetch 'tiny'"), err
        # The hub was asked once, with the timeout: the connection opened, and no answer came.
        assert calls == [(endpoint_address(silent.endpoint), HUB_TIMEOUT)] and len(silent.accepted) == 1
        with pytest.raises(W2SError, match=r"needs the Hugging Face hub \(fancyzhx/amazon_polarity\), which is unreachable"):
            load_task("amazon_polarity", n_train=10, n_test=10)
        assert len(calls) == 1  # the answer is remembered: not asked again
    assert leftovers(models) == [] and not (models / "tiny" / TINY[1]).exists()


def test_hub_reachable_asks_hf_endpoint(hub, monkeypatch):
    assert hub_reachable() is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_reachable() is False  # offline mode wins over a reachable endpoint
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "true")
    assert hub_reachable() is False
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    assert hub_reachable() is False  # a refused connection answers at once


# ---------------------------------------------------------------- models pull (real smollm2 bytes)


@pytest.fixture
def smollm2_hub(smollm2, hub, tmp_path):
    """The server holds the real smollm2 GGUF under the llama2-7b and llama1-7b repos."""
    data = smollm2.path.read_bytes()
    for repo, filename, revision in (LLAMA2, LLAMA1):
        hub.add_repo("model", repo, {filename: data, "README.md": b"# GGUF\n"}, commit=revision)
    registry = write_registry(tmp_path / "models.toml", {
        "llama2-7b": hf_entry(LLAMA2, smollm2.sha256, smollm2.size),
        "llama1-7b": hf_entry(LLAMA1),  # no pinned sha256 or size, like the packaged entry
    })
    return hub, registry, smollm2


@pytest.mark.slow
def test_pull_downloads_verifies_and_a_second_pull_downloads_nothing(smollm2_hub, tmp_path, monkeypatch, capsys):
    hub, registry, smollm2 = smollm2_hub
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "llama2-7b", "--registry", registry)
    assert code == 0, err
    dest = tmp_path / "w2s" / "models" / "llama2-7b" / LLAMA2[1]
    assert f"llama2-7b: {dest}" in out and smollm2.sha256[:16] in out
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == smollm2.sha256
    assert [m for m, _, _ in hub.requests(contains=LLAMA2[1])].count("GET") == 1
    assert leftovers(tmp_path / "w2s") == []
    seen = len(hub.requests())
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "llama2-7b", "--registry", registry)
    assert code == 0, err
    assert len(hub.requests()) == seen  # verified from disk: not one request


@pytest.mark.slow
def test_unpinned_entry_uses_and_records_the_hubs_lfs_sha256(smollm2_hub, tmp_path, monkeypatch, capsys):
    hub, registry, smollm2 = smollm2_hub
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "llama1-7b", "--registry", registry)
    assert code == 0, err
    dest = tmp_path / "w2s" / "models" / "llama1-7b" / LLAMA1[1]
    record = json.loads(dest.with_name(dest.name + ".hub-sha256.json").read_text())
    assert record == {"sha256": smollm2.sha256, "revision": LLAMA1[2]}
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "verify", "--registry", registry)
    assert code == 0 and "llama1-7b" in out and "ok" in out
    # A file changed on disk no longer matches the recorded hash: it is fetched again.
    with open(dest, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\0" * 16)
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "llama1-7b", "--registry", registry)
    assert code == 0 and "fetching it again" in err
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == smollm2.sha256


@pytest.mark.slow
def test_one_flipped_byte_is_found_by_verify_and_fetched_again_by_run(smollm2_hub, gemma3, tmp_path, monkeypatch, capsys):
    hub, registry, smollm2 = smollm2_hub
    dests = {}
    for name, (_, filename, _) in (("llama2-7b", LLAMA2), ("llama1-7b", LLAMA1)):  # pinned, and the hub's hash
        code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", name, "--registry", registry)
        assert code == 0, err
        dests[name] = tmp_path / "w2s" / "models" / name / filename
    # One byte flipped deep in the weights, size and modification time kept (bit rot, or a copy that keeps
    # times): nothing but a full re-hash can tell.
    for dest in dests.values():
        st = dest.stat()
        with open(dest, "r+b") as fh:
            fh.seek(st.st_size // 2)
            byte = fh.read(1)
            fh.seek(st.st_size // 2)
            fh.write(bytes([byte[0] ^ 0x01]))
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "verify", "--registry", registry)
    assert code == 2 and err.count("\n") == 1 and "2 model file(s) do not match their sha256" in err, err
    for name, dest in dests.items():
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        actual = hashlib.sha256(dest.read_bytes()).hexdigest()
        assert line.split()[1:] == ["MISMATCH", "sha256", f"{actual[:16]}...,", "expected", f"{smollm2.sha256[:16]}..."]
    # `run` does not use the damaged file: it fetches it again, then runs.
    gets = len(hub.requests("GET", LLAMA2[1]))
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": f"Review {i}: {'great' if i % 2 else 'dull'} film.", "label": i % 2}) + "\n"
                            for i in range(24)))
    code, out, err = invoke_cli(monkeypatch, capsys, "run", "--weak", "llama2-7b", "--strong", gemma3.path, "--data", data,
                                "--registry", registry, "--n-train", "8", "--n-test", "4", "--seeds", "1", "--no-progress",
                                "--out", tmp_path / "out")
    assert code == 0, err
    assert f"{dests['llama2-7b']} has sha256 " in err and "fetching it again" in err
    assert len(hub.requests("GET", LLAMA2[1])) == gets + 1
    assert hashlib.sha256(dests["llama2-7b"].read_bytes()).hexdigest() == smollm2.sha256
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "llama1-7b", "--registry", registry)
    assert code == 0 and "fetching it again" in err, err
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "verify", "--registry", registry)
    assert code == 0 and [line.split()[1] for line in out.splitlines()] == ["ok", "ok"], out


# ---------------------------------------------------------------- faults (24 MB of made-up bytes)


@pytest.fixture
def tiny(hub, tmp_path):
    hub.add_repo("model", TINY[0], {TINY[1]: TINY_BYTES}, commit=TINY[2])
    sha = hashlib.sha256(TINY_BYTES).hexdigest()
    registry = write_registry(tmp_path / "models.toml", {"tiny": hf_entry(TINY, sha, len(TINY_BYTES)), "tiny-unpinned": hf_entry(TINY)})
    return hub, registry, sha, tmp_path / "w2s" / "models"


def fetch(dest: Path, sha256: str | None, size: int | None = None, repo_file_rev=TINY):
    from w2s_gguf.models.hub import fetch_verified

    dest.parent.mkdir(parents=True, exist_ok=True)
    fetch_verified(*repo_file_rev, dest, sha256, size, "test registry")


def bodies_from(hub) -> set[str]:
    """Where the model file's bytes came from: "hub" (resolve answered 200/206) and/or "cdn"."""
    return {"cdn" if path.startswith("cdn:") else "hub" for method, path, status in hub.answers
            if method == "GET" and TINY[1] in path and status in (200, 206)}


def redirected_heads(hub) -> int:
    return sum(1 for method, path, status in hub.answers if method == "HEAD" and TINY[1] in path and status == 302)


@both_ways
def test_cut_body_is_resumed_with_a_range_request(tiny):
    hub, _, sha, models = tiny
    hub.fault(TINY[1], cut_after=15 * 2**20)
    dest = models / "tiny" / TINY[1]
    fetch(dest, sha)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha
    ranges = [r for m, _, r in hub.requests("GET", TINY[1]) if r]
    assert ranges and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"
    assert bodies_from(hub) == ({"cdn"} if hub.cdn else {"hub"})  # resumed where the bytes live
    assert (redirected_heads(hub) > 0) == bool(hub.cdn)
    assert leftovers(models) == []


# The download in a child process that says when its first chunk is on disk, so the test kills it there.
KILLED_CHILD = """
import sys
from pathlib import Path
from huggingface_hub import file_download
from w2s_gguf.models.hub import fetch_verified

class Announce:
    def __init__(self, f): self.f = f
    def __getattr__(self, name): return getattr(self.f, name)
    def write(self, data):
        n = self.f.write(data)
        self.f.flush()
        print("wrote", self.f.tell(), flush=True)
        return n

real = file_download.http_get
file_download.http_get = lambda url, temp_file, **kw: real(url, Announce(temp_file), **kw)
repo, filename, revision, dest = sys.argv[1:]
fetch_verified(repo, filename, revision, Path(dest), None, None, "x")
"""


@both_ways
def test_killed_download_restarts_cleanly(tiny, tmp_path):
    hub, _, sha, models = tiny
    release = threading.Event()
    hub.fault(TINY[1], cut_after=12 * 2**20, block=release)  # send 12 MB, then hang until released
    dest = models / "tiny" / TINY[1]
    dest.parent.mkdir(parents=True)
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint}
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, *TINY, str(dest)], env=env, stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).parents[2])
    try:
        line = child.stdout.readline()  # its first chunk is written and flushed: kill it mid-download
        assert line.startswith("wrote "), f"the child ended first (exit {child.wait()})"
        partial = [p for p in models.rglob("*.incomplete") if p.stat().st_size > 0]
        assert partial, "the killed download left no partial file to clean up"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        release.set()
    assert not dest.exists()
    fetch(dest, sha)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha
    assert leftovers(models) == []


@both_ways
def test_wrong_bytes_are_deleted_with_one_line(tiny, monkeypatch, capsys):
    hub, registry, sha, models = tiny
    hub.fault(TINY[1], corrupt=True, times=None)
    # Against the pinned sha256, and against the hub's LFS sha256 (on a redirect: its X-Linked-Etag).
    for name in ("tiny", "tiny-unpinned"):
        code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", name, "--registry", registry)
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("error: downloaded someone/tiny-GGUF/tiny.gguf") and "was deleted" in err
        assert not (models / name / TINY[1]).exists() and not (models / name / (TINY[1] + ".hub-sha256.json")).exists()
    assert bodies_from(hub) == ({"cdn"} if hub.cdn else {"hub"})
    assert leftovers(models) == []


@both_ways
def test_an_unpinned_pull_records_the_sha256_the_hub_states(tiny, monkeypatch, capsys):
    hub, registry, sha, models = tiny
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "tiny-unpinned", "--registry", registry)
    # tiny.gguf is made-up bytes, not a GGUF file: the pull verifies them, then the header check refuses them.
    assert code == 2 and "is not a GGUF file" in err, err
    record = json.loads((models / "tiny-unpinned" / (TINY[1] + ".hub-sha256.json")).read_text())
    assert record == {"sha256": sha, "revision": TINY[2]}  # from X-Linked-Etag, on the 302 itself when redirected
    assert (redirected_heads(hub) > 0) == bool(hub.cdn)


@pytest.mark.parametrize("case, message", [
    ("revision", "has no revision 0000000000000000000000000000000000000000 of someone/tiny-GGUF/tiny.gguf; fix revision in"),
    ("filename", "has no file someone/tiny-GGUF/nope.gguf@cccccccccc; fix filename in"),
    ("repo", "refused someone/nope/tiny.gguf@cccccccccc (401: missing, private or needs a token); fix repo in"),
    ("401", "refused someone/tiny-GGUF/tiny.gguf@cccccccccc (401"),
    ("500-head", "answered HTTP 500 for someone/tiny-GGUF/tiny.gguf@cccccccccc; try again later"),
    ("500-get", "answered HTTP 500 for someone/tiny-GGUF/tiny.gguf@cccccccccc; try again later"),
])
def test_hub_errors_are_one_line_and_leave_nothing(tiny, tmp_path, monkeypatch, capsys, case, message):
    hub, _, sha, models = tiny
    repo, filename, revision = TINY
    if case == "revision":
        revision = "0" * 40
    elif case == "filename":
        filename = "nope.gguf"
    elif case == "repo":
        repo = "someone/nope"
    elif case == "401":
        hub.fault(TINY[1], status=401, methods=("HEAD",))
    elif case == "500-head":
        hub.fault(TINY[1], status=500, methods=("HEAD",), times=None)
    elif case == "500-get":
        hub.fault(TINY[1], status=500, methods=("GET",), times=None)
    registry = write_registry(tmp_path / "bad.toml", {"tiny": hf_entry((repo, filename, revision), sha)})
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "tiny", "--registry", registry)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: the hub (http://127.0.0.1:") and message in err, err
    assert not (models / "tiny" / filename).exists()
    assert leftovers(models) == []


def test_unreachable_endpoint_fails_a_pull_at_once(tiny, monkeypatch, capsys):
    _, registry, _, models = tiny
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", "tiny", "--registry", registry)
    assert code == 2 and err.startswith("error: cannot reach the Hugging Face hub (http://127.0.0.1:") and err.count("\n") == 1


# ---------------------------------------------------------------- task loaders through datasets.load_dataset


def parquet(rows: list[dict], features=None) -> bytes:
    """Parquet bytes written by `datasets` (so ClassLabel and other features are kept in the schema)."""
    import datasets

    buf = io.BytesIO()
    datasets.Dataset.from_list(rows, features=features).to_parquet(buf)
    return buf.getvalue()


def jsonl_gz(rows: list[dict]) -> bytes:
    return gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())


def readme(configs: dict[str, dict[str, str]] | None) -> bytes:
    """A dataset card whose YAML header lists the configs' data files, as the real cards do."""
    lines = ["---", "license: other"]
    if configs:
        lines.append("configs:")
        for name, splits in configs.items():
            lines += [f"- config_name: {name}", "  data_files:"]
            lines += [f"  - split: {split}\n    path: {pattern}" for split, pattern in splits.items()]
    return ("\n".join(lines + ["---", "# test copy", ""])).encode()


def sciq():
    rows = [{"question": f"Which organ pumps blood, case {i}?", "distractor3": f"liver {i}", "distractor1": f"lung {i}",
             "distractor2": f"kidney {i}", "correct_answer": f"heart {i}", "support": f"The heart pumps blood ({i})."} for i in range(40)]
    files = {"README.md": readme({"default": {"train": "data/train-*", "validation": "data/validation-*", "test": "data/test-*"}}),
             "data/train-00000-of-00001.parquet": parquet(rows[:28]), "data/validation-00000-of-00001.parquet": parquet(rows[28:]),
             "data/test-00000-of-00001.parquet": parquet([dict(r, question="unused " + r["question"]) for r in rows[:5]])}
    return "allenai/sciq", "main", files, rows


def boolq():
    rows = [{"question": f"is case {i} true", "answer": i % 3 != 0, "passage": f"Passage {i}: case {i} is {'false' if i % 3 == 0 else 'true'}."}
            for i in range(40)]
    files = {"README.md": readme({"default": {"train": "data/train-*", "validation": "data/validation-*"}}),
             "data/train-00000-of-00001.parquet": parquet(rows[:28]), "data/validation-00000-of-00001.parquet": parquet(rows[28:])}
    return "google/boolq", "main", files, rows


def amazon_polarity():
    import datasets

    features = datasets.Features({"label": datasets.ClassLabel(names=["negative", "positive"]),
                                  "title": datasets.Value("string"), "content": datasets.Value("string")})
    rows = [{"label": i % 2, "title": f"Review {i}", "content": f"{'Great' if i % 2 else 'Awful'} product number {i}."} for i in range(40)]
    files = {"README.md": readme({"amazon_polarity": {"train": "amazon_polarity/train-*", "test": "amazon_polarity/test-*"}}),
             "amazon_polarity/train-00000-of-00002.parquet": parquet(rows[:14], features),
             "amazon_polarity/train-00001-of-00002.parquet": parquet(rows[14:28], features),
             "amazon_polarity/test-00000-of-00001.parquet": parquet(rows[28:], features)}
    return "fancyzhx/amazon_polarity", "main", files, rows


def anthropic_hh():
    rows = [{"chosen": f"\n\nHuman: Question {i}?\n\nAssistant: A helpful answer {i}.",
             "rejected": f"\n\nHuman: Question {i}?\n\nAssistant: A rude answer {i}."} for i in range(40)]
    red_team = [{"transcript": "\n\nHuman: hi\n\nAssistant: hello", "rating": 0.0, "task_description": "x"}]
    files = {"README.md": readme(None),  # the real card has no configs: datasets finds the splits by file name
             "harmless-base/train.jsonl.gz": jsonl_gz(rows[:14]), "harmless-base/test.jsonl.gz": jsonl_gz(rows[28:34]),
             "helpful-base/train.jsonl.gz": jsonl_gz(rows[14:28]), "helpful-base/test.jsonl.gz": jsonl_gz(rows[34:]),
             "red-team-attempts/red_team_attempts.jsonl.gz": jsonl_gz(red_team)}
    return "Anthropic/hh-rlhf", "main", files, rows


def cosmos_qa():
    import datasets

    features = datasets.Features({**{k: datasets.Value("string") for k in ("id", "context", "question", "answer0", "answer1", "answer2", "answer3")},
                                  "label": datasets.Value("int32")})
    rows = [{"id": f"id{i}", "context": f"Story {i}: Sam went out.", "question": f"Why did Sam go out ({i})?",
             "answer0": "To shop .", "answer1": "To run .", "answer2": "None of the above choices .", "answer3": "To sleep .", "label": i % 4}
            for i in range(40)]
    files = {"cosmos_qa/train/0000.parquet": parquet(rows[:28], features), "cosmos_qa/validation/0000.parquet": parquet(rows[28:], features),
             "cosmos_qa/test/0000.parquet": parquet([dict(r, label=-1) for r in rows[:5]], features)}
    return "allenai/cosmos_qa", "refs/convert/parquet", files, rows


def chess():
    """Real puzzles from the packaged Lichess sample, in the hub's parquet schema (Themes and OpeningTags as lists)."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = Path(__file__).parents[2] / "w2s_gguf" / "data" / "chess" / "lichess_puzzles.csv.gz"
    with gzip.open(sample, "rt", newline="") as fh:
        rows = [r for _, r in zip(range(40), csv.DictReader(fh))]
    schema = pa.schema([("PuzzleId", pa.large_string()), ("GameId", pa.string()), ("FEN", pa.large_string()), ("Moves", pa.large_string()),
                        ("Rating", pa.uint16()), ("RatingDeviation", pa.uint16()), ("Popularity", pa.int8()), ("NbPlays", pa.uint32()),
                        ("Themes", pa.list_(pa.string())), ("OpeningTags", pa.list_(pa.string()))])
    table = pa.Table.from_pylist([{
        "PuzzleId": r["PuzzleId"], "GameId": r["GameUrl"].removeprefix("https://lichess.org/"), "FEN": r["FEN"], "Moves": r["Moves"],
        "Rating": int(r["Rating"]), "RatingDeviation": int(r["RatingDeviation"]), "Popularity": int(r["Popularity"]), "NbPlays": int(r["NbPlays"]),
        "Themes": r["Themes"].split(), "OpeningTags": r["OpeningTags"].split() or None} for r in rows], schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    files = {"README.md": readme({"default": {"train": "data/train-*"}}), "data/train-00000-of-00001.parquet": buf.getvalue()}
    return "Lichess/chess-puzzles", "main", files, rows


DATASETS = {"sciq": sciq, "boolq": boolq, "amazon_polarity": amazon_polarity, "anthropic_hh": anthropic_hh, "cosmos_qa": cosmos_qa, "chess": chess}


@pytest.mark.parametrize("task", sorted(DATASETS))
def test_task_loads_its_hub_dataset_through_datasets(hub, tmp_path, task):
    from w2s_gguf.tasks import TaskOptions, get_task, load_task

    name, revision, files, rows = DATASETS[task]()
    hub.add_repo("dataset", name, files, revision=revision)
    if revision != "main":  # the main branch holds only a loading script, which datasets refuses
        hub.add_repo("dataset", name, {f"{name.split('/')[1]}.py": b"import datasets\n", "README.md": readme(None)})
    got = get_task(task).load(TaskOptions())
    assert got.source.startswith(f"hub:{name}")
    assert hub.requests("GET", f"/datasets/{name}/resolve/")  # the bytes came from the server
    # The same rows from a local file give the same docs: the hub path reads every row and column right.
    local = tmp_path / ("rows.csv" if task == "chess" else "rows.jsonl")
    if task == "chess":
        import csv

        with open(local, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        local.write_text("".join(json.dumps(r) + "\n" for r in rows))
    want = get_task(task).load(TaskOptions(data=str(local)))
    assert sorted((d.text, d.label) for d in got.train + got.test) == sorted((d.text, d.label) for d in want.train + want.test)
    assert len(got.train + got.test) >= 30
    chosen = load_task(task, n_train=4, n_test=2, balance=True)
    assert chosen.source == got.source and len(chosen.train) == 4


def test_unreachable_endpoint_falls_back_without_asking_datasets(hub, monkeypatch):
    import datasets

    from w2s_gguf.tasks import TaskOptions, load_task

    def never(*args, **kwargs):
        raise AssertionError("datasets.load_dataset was called with the hub unreachable")

    monkeypatch.setattr(datasets, "load_dataset", never)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    chess = load_task("chess", n_train=10, n_test=10, options=TaskOptions(extra={"max_puzzles": 200}))
    assert chess.source.startswith("the packaged Lichess puzzle sample")
    with pytest.raises(W2SError, match=r"needs the Hugging Face hub \(fancyzhx/amazon_polarity\), which is unreachable"):
        load_task("amazon_polarity", n_train=10, n_test=10)


def test_hub_dataset_failure_is_one_line(hub):
    from w2s_gguf.tasks import load_task

    name, revision, files, _ = sciq()
    hub.add_repo("dataset", name, files, revision=revision)
    hub.fault("/data/train-", status=401, methods=("HEAD", "GET"), times=None)  # 500 works too, after ~23 s of retries
    with pytest.raises(W2SError, match=r"^could not load allenai/sciq \(train\) from the Hugging Face hub \(.*HF_HUB_OFFLINE=1") as exc:
        load_task("sciq", n_train=4, n_test=2)
    assert "\n" not in str(exc.value)

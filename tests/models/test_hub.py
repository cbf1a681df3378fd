"""The Hugging Face hub code paths against a real HTTP hub on 127.0.0.1 (tests/hub_server.py).

huggingface_hub and datasets talk to the server exactly as to the hub
(HF_ENDPOINT); model pulls, faults and every hub task loader are checked
end to end. Tests that need the real 98 MB smollm2 GGUF are marked slow.
"""

from __future__ import annotations

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
import time
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
def hub(tmp_path, monkeypatch):
    with HubServer() as server:
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


def test_endpoint_address_reads_host_and_port():
    assert endpoint_address("https://huggingface.co") == ("huggingface.co", 443)
    assert endpoint_address("http://127.0.0.1:8123/") == ("127.0.0.1", 8123)
    assert endpoint_address("https://hf-mirror.example/sub") == ("hf-mirror.example", 443)
    assert endpoint_address("not a url") is None


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


def test_cut_body_is_resumed_with_a_range_request(tiny):
    hub, _, sha, models = tiny
    hub.fault(TINY[1], cut_after=15 * 2**20)
    dest = models / "tiny" / TINY[1]
    fetch(dest, sha)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha
    ranges = [r for m, _, r in hub.requests("GET", TINY[1]) if r]
    assert ranges and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"
    assert leftovers(models) == []


def test_killed_download_restarts_cleanly(tiny, tmp_path):
    hub, _, sha, models = tiny
    release = threading.Event()
    hub.fault(TINY[1], cut_after=12 * 2**20, block=release)  # send 12 MB, then hang until released
    dest = models / "tiny" / TINY[1]
    dest.parent.mkdir(parents=True)
    script = f"from w2s_gguf.models.hub import fetch_verified; from pathlib import Path; fetch_verified(*{TINY!r}, Path({str(dest)!r}), None, None, 'x')"
    child = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(), cwd=Path(__file__).parents[2])
    try:
        assert hub.wait_sent(TINY[1], 12 * 2**20)
        partial = []
        for _ in range(600):  # until the child has written its first 10 MB chunk (at most 60 s)
            partial = [p for p in models.rglob("*.incomplete") if p.stat().st_size > 0]
            if partial or child.poll() is not None:
                break
            time.sleep(0.1)
        assert partial, "the killed download left no partial file to clean up"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        release.set()
    assert not dest.exists()
    fetch(dest, sha)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha
    assert leftovers(models) == []


def test_wrong_bytes_are_deleted_with_one_line(tiny, monkeypatch, capsys):
    hub, registry, sha, models = tiny
    hub.fault(TINY[1], corrupt=True, times=None)
    for name in ("tiny", "tiny-unpinned"):  # against the pinned sha256, and against the hub's LFS sha256
        code, out, err = invoke_cli(monkeypatch, capsys, "models", "pull", name, "--registry", registry)
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("error: downloaded someone/tiny-GGUF/tiny.gguf") and "was deleted" in err
        assert not (models / name / TINY[1]).exists() and not (models / name / (TINY[1] + ".hub-sha256.json")).exists()
    assert leftovers(models) == []


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

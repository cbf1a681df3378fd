"""The package reads as the pipeline: stages import only the stages above them, no import circles,
short modules, comments in the code's own terms, and the 0.2 module names still import."""

from __future__ import annotations

import ast
import importlib
import re
import sys
import warnings
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "w2s_gguf"
# A stage may import itself and the stages with a lower rank (w2s_gguf/__init__.py lists them in this order).
RANK = {"errors": 0, "_moved": 0, "common": 1, "models": 2, "tasks": 2, "features": 3, "results": 4, "core": 5,
        "report": 6, "experiment": 7, "tools": 8, "cli": 9}
MAX_LINES = 310


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported(name: str, path: Path) -> set[str]:
    """w2s_gguf modules that `name` imports anywhere in its file (top level or inside functions)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    tree = ast.parse(path.read_text())
    # Imports under `if TYPE_CHECKING:` never run; they are for type checkers only.
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("w2s_gguf"):
                continue
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import submodule`
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("w2s_gguf"))
    return found


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_stage_has_a_rank():
    stages = {stage(m) for m in modules()} - {None, "__main__"}
    assert stages <= set(RANK), f"give these subpackages a rank in RANK and in w2s_gguf/__init__.py: {stages - set(RANK)}"


def test_lower_stages_never_import_higher_ones():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        mine = stage(name)
        if mine is None:
            continue
        for target in imported(name, path):
            theirs = stage(target)
            if theirs is not None and target in mods and RANK[theirs] > RANK[mine]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    mods = modules()
    graph = {name: {t for t in imported(name, path) if t in mods and t != name} for name, path in mods.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(trail[trail.index(nxt):] + [node, nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not circles, "\n".join(circles)


def test_the_circle_check_finds_a_circle(tmp_path, monkeypatch):
    # The check itself can fail: two modules importing each other are reported.
    pkg = tmp_path / "w2s_gguf" / "core"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from .a import y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "w2s_gguf")
    with pytest.raises(AssertionError, match="w2s_gguf.core.a -> w2s_gguf.core.b"):
        test_no_import_circles()


def test_modules_are_short():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def test_comments_explain_the_code_not_the_issue_tracker():
    pattern = re.compile(r"\bissues? \d+", re.IGNORECASE)
    hits = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


@pytest.mark.parametrize("old, new, name", [
    ("w2s_gguf.protocol", "w2s_gguf.core.protocol", "run_protocol"),
    ("w2s_gguf.heads", "w2s_gguf.core.heads", "LinearProbe"),
    ("w2s_gguf.embeddings", "w2s_gguf.features.pipeline", "embed_texts"),
    ("w2s_gguf.methods.knn", "w2s_gguf.core.methods.knn", "knn_mean_labels"),
])
def test_old_module_names_still_import_with_a_warning(old, new, name):
    with pytest.warns(DeprecationWarning, match=re.escape(new)):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new) and hasattr(module, name)
    assert module.__spec__.name == new  # the real module keeps its own identity


def test_public_names_of_the_flat_layout_keep_working():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from w2s_gguf.experiment import ExperimentConfig, run_experiment  # noqa: F401
        from w2s_gguf.heads import LinearProbe  # noqa: F401
        from w2s_gguf.protocol import run_protocol  # noqa: F401
        from w2s_gguf.results import load_results  # noqa: F401

"""The README and docs/*.md stay in step with the code: their commands parse, their Python runs, their links resolve.

Which text counts as a command (the convention the docs are written to):
- a line of a fenced block marked bash, sh, shell, console or nothing; an indented (4-space) code line;
  or an inline code span that starts with `w2s-gguf `;
- split on `&&`, `||`, `;` and `|`, with leading `VAR=value` assignments dropped and `# ...` to the end of
  the line a comment; every piece that then starts with `w2s-gguf` is checked;
- `[...]` marks an optional part: the command is checked once without its optional parts and once with
  all of them;
- placeholders in capitals (DIR, FILE, RUN_A, HEAD) are passed as they stand: every place they appear
  takes a name or path, and a dry parse does not open files.
A check is a dry parse: typer's click command resolves the subcommands and `make_context` parses the
options (names, types, required ones), so a renamed command or option fails here; nothing runs.

Scripts: a piece that runs `python benchmarks/X.py ...`, `python scripts/X.py ...` or `scripts/X.sh ...`
names a file that exists; a Python script's arguments are parsed by the script's own argparse parser (its
module-level imports run, with packages that are not installed, such as transformers, stood in for; the
script stops as soon as its arguments are parsed); a shell script's flags appear in the script.

Python: every ```python block runs as written, in a fresh namespace, in an empty folder. A block right
after the line `<!-- docs-test: slow -->` needs real models: it runs in the slow lane, in a folder that
holds a small real run of the default pair at the default place,
w2s-results/sentiment-smollm2-135m-to-gemma3-270m.

Links: every relative link points at a file that exists (and at a heading of it, for `#anchor`), and every
inline code span naming a path under w2s_gguf/, tests/, scripts/, benchmarks/ or docs/ names one that exists.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
SLOW_MARK = "<!-- docs-test: slow -->"
DEFAULT_RUN = "w2s-results/sentiment-smollm2-135m-to-gemma3-270m"
PATH_PREFIXES = ("w2s_gguf/", "tests/", "scripts/", "benchmarks/", "docs/")


def blocks(text: str):
    """(kind, info, first line number, lines) per fenced block; kind "indented" for 4-space code lines."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```\s*(\S*)", lines[i])
        if fence:
            start = i + 1
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            yield "fenced", fence.group(1), start + 1, lines[start:i]
        elif lines[i].startswith("    ") and lines[i].strip():
            yield "indented", "", i + 1, [lines[i]]
        i += 1


def prose(text: str) -> str:
    """The text outside fenced blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def inline_spans(text: str) -> list[str]:
    # A span may wrap onto the next line in the markdown source.
    return [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose(text))]


def with_options(line: str) -> list[str]:
    """The command without its [optional] parts, and with all of them."""
    if "[" not in line:
        return [line]
    return [re.sub(r"\s*\[[^\[\]]*\]", "", line), re.sub(r"\[([^\[\]]*)\]", r"\1", line)]


def pieces_of(line: str) -> list[list[str]]:
    """The words of each command in one shell line, leading `VAR=value` assignments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    pieces, current = [], []
    for token in lexer:  # comments are dropped by the lexer
        if token in ("&&", "||", ";", "|", "&"):
            pieces.append(current)
            current = []
        else:
            current.append(token)
    pieces.append(current)
    out = []
    for words in pieces:
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]
        out.append(words)
    return out


def commands_in(line: str) -> list[list[str]]:
    """The argument lists of the `w2s-gguf` commands in one shell line."""
    return [words[1:] for words in pieces_of(line) if words and words[0] == "w2s-gguf"]


def scripts_in(line: str) -> list[tuple[str, list[str]]]:
    """(script path, its arguments) of each benchmarks/ or scripts/ command in one shell line."""
    found = []
    for words in pieces_of(line):
        if words[:1] in (["python"], ["python3"], ["bash"]):
            words = words[1:]
        if words and words[0].startswith(("benchmarks/", "scripts/")):
            found.append((words[0], words[1:]))
    return found


def shell_lines(page: Path):
    """(where, line) of each shell line of a page's code blocks."""
    name = page.relative_to(REPO)
    for kind, info, lineno, lines in blocks(page.read_text()):
        if kind == "fenced" and info not in SHELL_FENCES:
            continue
        for k, line in enumerate(lines):
            yield f"{name}:{lineno + k}", line


def shown_commands() -> list[tuple[str, list[str] | str]]:
    out = []
    for page in PAGES:
        out += [found for where, line in shell_lines(page) for found in commands_of(where, line)]
        out += [found for span in inline_spans(page.read_text()) if span.startswith("w2s-gguf ")
                for found in commands_of(f"{page.relative_to(REPO)}: `{span}`", span)]
    return out


def commands_of(where: str, line: str) -> list[tuple[str, list[str] | str]]:
    """(where, args) per command in the line; (where, the problem) where a line naming w2s-gguf does not lex."""
    if "w2s-gguf" not in line:
        return []
    try:
        return [(where, args) for variant in with_options(line) for args in commands_in(variant)]
    except ValueError as exc:  # shlex: an unclosed quote
        return [(where, f"cannot split `{line.strip()}` like a shell: {exc}")]


def shown_scripts() -> list[tuple[str, str, list[str]]]:
    return [(where, script, args) for page in PAGES for where, line in shell_lines(page)
            if "benchmarks/" in line or "scripts/" in line
            for variant in with_options(line) for script, args in scripts_in(variant)]


# Runs a Python script until its argparse parser has parsed the arguments, then exits 0 (a bad argument: 2,
# argparse's own message). A package the script itself imports that no installed finder knows is stood in
# for by an empty module, so a benchmark's optional extra need not be installed to check its command line;
# the libraries it imports still see their own optional imports fail as usual.
PARSE_ONLY = r"""
import argparse, importlib.abc, importlib.machinery, os, runpy, sys, types

class Absent(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Absent(f"{self.__name__}.{name}")
    def __call__(self, *args, **kwargs):
        return self

class StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        frame = sys._getframe(1)
        while frame and frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        if frame is None or frame.f_code.co_filename != SCRIPT:
            return None
        root = name.split(".")[0]
        if root in sys.modules and not isinstance(sys.modules[root], Absent):
            return None
        if any(f.find_spec(root, None) for f in sys.meta_path if f is not self and hasattr(f, "find_spec")):
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        return Absent(spec.name)
    def exec_module(self, module):
        pass

sys.meta_path.append(StandIn())
parse = argparse.ArgumentParser.parse_args
def parse_then_stop(self, args=None, namespace=None):
    parse(self, args, namespace)
    sys.stdout.flush()
    os._exit(0)
argparse.ArgumentParser.parse_args = parse_then_stop
sys.argv = sys.argv[1:]
SCRIPT = os.path.abspath(sys.argv[0])
sys.path.insert(0, os.path.dirname(SCRIPT))
runpy.run_path(SCRIPT, run_name="__main__")
sys.exit("the script ended without parsing its arguments")
"""


def script_parses(script: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PARSE_ONLY, script, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def parse_outcomes() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(what a bad command line raises, what --help raises): click's classes, or those of the click that
    typer carries inside (typer 0.2x), which are not click's."""
    import click
    import typer

    errors = {click.ClickException, getattr(typer, "TyperException", click.ClickException)}
    return tuple(errors), tuple({click.exceptions.Exit, typer.Exit})


def dry_parse(args: list[str]) -> None:
    """Resolve the subcommands and parse the options as `w2s-gguf ARGS` would, running nothing."""
    import typer.main

    from w2s_gguf.cli.app import app

    command = typer.main.get_command(app)
    try:
        ctx = command.make_context("w2s-gguf", list(args))
        while hasattr(command, "resolve_command"):  # a group: the next word names a subcommand
            rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
            name, command, rest = command.resolve_command(ctx, rest)
            ctx = command.make_context(name, rest, parent=ctx)
    except parse_outcomes()[1] as done:  # --help prints and exits 0
        assert done.exit_code == 0


COMMANDS = shown_commands()


def test_the_docs_show_commands():
    # The scanner itself: the README's headline and test-suite commands are among those found.
    found = {" ".join(args) for _, args in COMMANDS if not isinstance(args, str)}
    assert "run --weak llama1-7b.gguf --strong llama2-7b.gguf --task chess" in found
    assert "run" in found  # from `python3 -m pip install . && w2s-gguf run`
    assert "bench --model smollm2-135m --task sentiment --layers all --warm-run" in found  # [optional] parts
    assert len(COMMANDS) > 40


@pytest.mark.parametrize("where, args", COMMANDS,
                         ids=[f"{w} {a if isinstance(a, str) else ' '.join(a)}"[:90] for w, a in COMMANDS])
def test_every_shown_command_parses(where, args, capsys):
    if isinstance(args, str):
        pytest.fail(f"{where}: {args}")
    try:
        dry_parse(args)
    except parse_outcomes()[0] as exc:  # UsageError, BadParameter, NoSuchOption, ...
        pytest.fail(f"{where}: `w2s-gguf {' '.join(args)}` does not parse: {exc.format_message()}")


SCRIPTS = shown_scripts()


def test_the_docs_show_scripts():
    shown = {script for _, script, _ in SCRIPTS}
    assert {"benchmarks/batch_independence.py", "scripts/vulkan_check.sh", "scripts/make_7b_shape.py"} <= shown


@pytest.mark.parametrize("where, script, args", SCRIPTS,
                         ids=[f"{w} {s} {' '.join(a)}"[:90] for w, s, a in SCRIPTS])
def test_every_shown_script_exists_and_takes_its_arguments(where, script, args):
    path = REPO / script
    assert path.is_file(), f"{where}: {script} does not exist"
    if path.suffix == ".sh":
        unknown = [a for a in args if a.startswith("-") and a not in path.read_text()]
        assert not unknown, f"{where}: {script} has no {unknown}"
        return
    proc = script_parses(script, args)
    assert proc.returncode == 0, f"{where}: `{script} {' '.join(args)}` does not parse: {proc.stderr[-800:]}"


def test_a_wrong_script_argument_does_not_parse():
    assert script_parses("benchmarks/batch_independence.py", ["smollm2-135m", "--docs", "8"]).returncode == 0
    for wrong in (["smollm2-135m", "--dosc", "8"], ["smollm2-135m", "--docs", "many"], []):
        assert script_parses("benchmarks/batch_independence.py", wrong).returncode == 2, wrong
    # A script that imports an optional extra (transformers) still has its arguments checked.
    assert script_parses("benchmarks/compare_transformers.py", ["--n-dosc", "8"]).returncode == 2


def test_a_wrong_option_or_command_does_not_parse():
    dry_parse(["run", "--layer", "middle"])
    for wrong in (["run", "--layerz", "middle"], ["runn"], ["models", "pul", "x"], ["embed", "--model", "m"],
                  ["run", "--n-train", "many"], ["models"]):
        with pytest.raises(parse_outcomes()[0]):
            dry_parse(wrong)


def python_blocks() -> list:
    out = []
    for page in PAGES:
        text = page.read_text()
        lines = text.splitlines()
        for kind, info, lineno, body in blocks(text):
            if kind != "fenced" or info != "python":
                continue
            before = [line for line in lines[: lineno - 2] if line.strip()]
            slow = bool(before) and before[-1].strip() == SLOW_MARK
            marks = [pytest.mark.slow] if slow else []
            out.append(pytest.param("\n".join(body), slow, id=f"{page.relative_to(REPO)}:{lineno}", marks=marks))
    return out


@pytest.fixture(scope="session")
def small_default_run(tmp_path_factory, smollm2, gemma3):
    """A folder holding a small real run of the default pair where `w2s-gguf run` would put it."""
    from w2s_gguf.experiment import ExperimentConfig, run_experiment

    folder = tmp_path_factory.mktemp("docs-run")
    config = ExperimentConfig(models=["smollm2-135m", "gemma3-270m"], task="sentiment", n_train=200, n_test=100)
    run_experiment(config, folder / DEFAULT_RUN, progress=False, log=lambda msg: None)
    return folder


@pytest.mark.parametrize("source, slow", python_blocks())
def test_every_python_block_runs(source, slow, request, tmp_path, monkeypatch):
    folder = request.getfixturevalue("small_default_run") if slow else tmp_path
    monkeypatch.chdir(folder)
    exec(compile(source, "<docs block>", "exec"), {"__name__": "__docs__"})


def test_the_docs_have_python_blocks_in_both_lanes():
    lanes = [p.values[1] for p in python_blocks()]
    assert lanes.count(False) >= 2 and lanes.count(True) >= 2


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.+)$", prose(page.read_text()), flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_links_and_paths_resolve(page):
    text = prose(page.read_text())
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"link {target}: no file {file.relative_to(REPO)}")
        elif anchor and anchor not in anchors(file):
            broken.append(f"link {target}: no heading #{anchor} in {file.relative_to(REPO)}")
    for span in inline_spans(page.read_text()):
        if span.startswith(PATH_PREFIXES) and re.fullmatch(r"[\w./-]+", span) and not (REPO / span).exists():
            broken.append(f"`{span}` does not exist")
    assert not broken, f"{page.relative_to(REPO)}:\n" + "\n".join(broken)


def test_the_readme_lists_every_moved_module():
    """The README's table of old module names says where each moved, as w2s_gguf/_moved.py does."""
    from w2s_gguf._moved import MOVED

    text = (REPO / "README.md").read_text()
    table = text.split("**Old module names.**", 1)[1].split("\n\n")[1]
    shown = {}
    for row in table.splitlines()[2:]:
        old_cell, new_cell = row.strip("|").split("|")
        olds = ["w2s_gguf" + name if name.startswith(".") else name for name in re.findall(r"`([^`]+)`", old_cell)]
        news = re.findall(r"`([^`]+)`", new_cell)
        if len(news) == 1 and news[0].endswith(".<same name>"):
            news = [news[0].replace("<same name>", old.rsplit(".", 1)[1]) for old in olds]
        assert len(olds) == len(news), row
        shown.update(zip(olds, news))
    assert shown == {f"w2s_gguf.{old}": f"w2s_gguf.{new}" for old, new in MOVED.items()}

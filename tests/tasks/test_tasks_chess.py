"""The chess task on the real Lichess sample and on small broken fixtures."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import chess
import pytest
import zstandard

from w2s_gguf.errors import W2SError
from w2s_gguf.tasks import TaskOptions, get_task
from w2s_gguf.tasks import chess_puzzles

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures"
BAD_ROWS = FIXTURES / "chess_bad_rows.csv"
TEXT = re.compile(
    r"Chess position \(FEN\): (?P<fen>[^\n]+)\n(?P<side>White|Black) to move\. Last move: (?P<last>\S+)\.\n"
    r"Candidate move: (?P<san>\S+) \((?P<uci>[a-h][1-8][a-h][1-8][qrbn]?)\)\nIs this the best move\?"
)


pytestmark = pytest.mark.usefixtures("offline_hub")  # tests/conftest.py


def load(**options):
    return get_task("chess").load(TaskOptions(**options))


@pytest.fixture(scope="module")
def sample():
    return load()


@pytest.fixture(scope="module")
def puzzles():
    """The sample's rows by PuzzleId, read independently of the loader."""
    with gzip.open(chess_puzzles.SAMPLE, "rt", newline="") as fh:
        return {row["PuzzleId"]: row for row in csv.DictReader(fh)}


def test_sample_loads_every_puzzle_with_a_legal_candidate(sample, puzzles):
    docs = sample.train + sample.test
    assert len(puzzles) == 11717 and len(docs) == 10793
    assert sample.skipped == {chess_puzzles.NO_SAME_CAPTURE: 924}
    assert "sample" in sample.source
    for doc in docs:
        row = puzzles[doc.group]
        match = TEXT.fullmatch(doc.text)
        assert match, doc.text
        # The shown position is the puzzle FEN after the setup move Moves[0].
        moves = row["Moves"].split()
        board = chess.Board(row["FEN"])
        board.push_uci(moves[0])
        assert match["fen"] == board.fen()
        candidate = chess.Move.from_uci(match["uci"])
        assert board.is_legal(candidate)
        assert match["san"] == board.san(candidate).rstrip("+#")  # marks are left out
        assert (match["uci"] == moves[1]) == (doc.label == 1)


def test_sample_labels_are_balanced_and_splits_disjoint(sample):
    docs = sample.train + sample.test
    rate = sum(d.label for d in docs) / len(docs)
    assert 0.48 < rate < 0.52
    assert 0.70 < len(sample.train) / len(docs) < 0.80
    assert not {d.group for d in sample.train} & {d.group for d in sample.test}
    assert {d.label for d in sample.test} == {0, 1}


def test_wrong_move_is_never_another_mate(sample, puzzles):
    """Lichess accepts any mate in one, so a label-0 candidate must not mate when the solution does."""
    checked = 0
    for doc in sample.train + sample.test:
        if doc.label == 0 and "mateIn1" in puzzles[doc.group]["Themes"]:
            board = chess.Board(TEXT.fullmatch(doc.text)["fen"])
            board.push_uci(TEXT.fullmatch(doc.text)["uci"])
            assert not board.is_checkmate()
            checked += 1
    assert checked > 500


def test_loading_twice_gives_identical_docs(sample):
    again = load()
    assert again.train == sample.train and again.test == sample.test


def test_rating_and_theme_filters(sample, puzzles):
    rated = load(min_rating=1500, max_rating=1700)
    docs = rated.train + rated.test
    assert docs and all(1500 <= int(puzzles[d.group]["Rating"]) <= 1700 for d in docs)
    assert rated.skipped["filtered: rating below 1500"] > 0
    # A puzzle's doc does not depend on the filters.
    full = {d.group: d for d in sample.train + sample.test}
    assert all(full[d.group] == d for d in docs)

    themed = load(themes=("fork,pin",))
    assert themed.train and all({"fork", "pin"} & set(puzzles[d.group]["Themes"].split()) for d in themed.train + themed.test)


def test_filter_that_leaves_nothing_says_what_to_relax():
    with pytest.raises(W2SError, match="--min-rating"):
        load(min_rating=3500)
    with pytest.raises(W2SError, match="has any of the themes Fork .*case-sensitive"):
        load(themes=("Fork",))
    with pytest.raises(W2SError, match="widen --min-rating/--max-rating or drop --themes"):
        load(themes=("fork",), min_rating=3300)  # forks exist, just not at that rating
    with pytest.raises(W2SError, match="swap"):
        load(min_rating=2000, max_rating=1000)


def test_max_puzzles_keeps_a_fixed_sample():
    small = load(extra={"max_puzzles": 100})
    assert len(small.train + small.test) + small.skipped[chess_puzzles.NO_SAME_CAPTURE] == 100
    assert small.skipped["not in the fixed sample of max_puzzles=100"] == 11617
    assert load(extra={"max_puzzles": 100}).train == small.train


def test_bad_rows_are_skipped_and_counted():
    got = load(data=str(BAD_ROWS))
    assert sorted(d.group for d in got.train + got.test) == ["000rZ", "001KR"]
    assert got.skipped == {
        chess_puzzles.NO_SAME_CAPTURE: 1,  # 005YX: fxe6 is its only capture
        "illegal solution move (Moves[1])": 1,
        "illegal setup move (Moves[0])": 1,
        "unparseable FEN": 1,
        "unparseable UCI move": 1,
        "only one legal move": 1,
        "rating is not an integer": 1,
    }
    assert got.source == f"file:{BAD_ROWS}"


def test_compressed_and_headerless_files_read_the_same(tmp_path):
    plain = load(data=str(BAD_ROWS))
    data = BAD_ROWS.read_bytes()
    gz = tmp_path / "p.csv.gz"
    gz.write_bytes(gzip.compress(data))
    zst = tmp_path / "p.csv.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(data))
    headerless = tmp_path / "old.csv"
    headerless.write_bytes(data.split(b"\n", 1)[1])  # older Lichess exports have no header line
    for path in (gz, zst, headerless):
        got = load(data=str(path))
        assert (got.train, got.test, got.skipped) == (plain.train, plain.test, plain.skipped)


def test_files_that_are_not_puzzle_csvs(tmp_path):
    with pytest.raises(W2SError, match="missing column.*PuzzleId, FEN, Moves, Themes"):
        load(data=str(FIXTURES / "chess_not_lichess.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(W2SError, match="empty"):
        load(data=str(empty))
    header_only = tmp_path / "header.csv"
    header_only.write_text(BAD_ROWS.read_text().splitlines()[0] + "\n")
    with pytest.raises(W2SError, match="no puzzle rows"):
        load(data=str(header_only))
    with pytest.raises(W2SError, match="not found"):
        load(data=str(tmp_path / "missing.csv"))
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"this is not gzip")
    with pytest.raises(W2SError, match="cannot read"):
        load(data=str(broken))
    only_bad = tmp_path / "bad.csv"
    lines = BAD_ROWS.read_text().splitlines()
    only_bad.write_text("\n".join([lines[0]] + [l for l in lines if l.startswith("BAD")]) + "\n")
    with pytest.raises(W2SError, match="all 5 rows were skipped"):
        load(data=str(only_bad))


def test_hub_rows_with_theme_lists(monkeypatch):
    """The hub dataset stores Themes as a list and has no GameUrl; docs match the CSV's."""
    import datasets

    with open(BAD_ROWS, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if not r["PuzzleId"].startswith("BAD")]
    table = {
        "PuzzleId": [r["PuzzleId"] for r in rows],
        "FEN": [r["FEN"] for r in rows],
        "Moves": [r["Moves"] for r in rows],
        "Rating": [int(r["Rating"]) for r in rows],
        "Themes": [r["Themes"].split() for r in rows],
    }
    asked = []

    def fake_hub_split(name, split, revision=None, hint=""):
        asked.append((name, split))
        return datasets.Dataset.from_dict(table)

    monkeypatch.setattr(chess_puzzles, "hub_reachable", lambda: True)
    monkeypatch.setattr(chess_puzzles, "hub_split", fake_hub_split)
    got = load(themes=("mate",))
    assert asked == [("Lichess/chess-puzzles", "train")]
    assert got.source == "hub:Lichess/chess-puzzles"
    from_csv = load(data=str(BAD_ROWS), themes=("mate",))
    assert (got.train, got.test) == (from_csv.train, from_csv.test)
    assert sorted(d.group for d in got.train + got.test) == ["000rZ", "001KR"]


def test_sample_ships_inside_the_package(tmp_path):
    """A built wheel carries the sample and its SOURCE.md, so `pip install .` users have offline chess."""
    import subprocess
    import sys
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("w2s_gguf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"w2s_gguf/data/chess/lichess_puzzles.csv.gz", "w2s_gguf/data/chess/SOURCE.md"} <= names
    assert chess_puzzles.SAMPLE.is_file()


def solution_and_others(row):
    """The position after the setup move, the solution, and the legal moves a wrong candidate may be."""
    moves = row["Moves"].split()
    board = chess.Board(row["FEN"])
    board.push_uci(moves[0])
    best = chess.Move.from_uci(moves[1])
    others = [m for m in board.legal_moves if m != best]
    if _mates(board, best):
        others = [m for m in others if not _mates(board, m)]
    return board, best, others


def _mates(board, move):
    board.push(move)
    mate = board.is_checkmate()
    board.pop()
    return mate


def test_every_wrong_candidate_has_the_solutions_capture_status(sample, puzzles):
    """Before, 1231 of the 5899 wrong candidates differed from the solution in capture (the SAN's x)."""
    kinds = {"same kind": 0, "capture only": 0}
    for doc in sample.train + sample.test:
        if doc.label:
            continue
        board, best, others = solution_and_others(puzzles[doc.group])
        candidate = chess.Move.from_uci(TEXT.fullmatch(doc.text)["uci"])
        assert board.is_capture(candidate) == board.is_capture(best), doc.group
        same_check = board.gives_check(candidate) == board.gives_check(best)
        # A check mismatch only where no move of the solution's full kind exists.
        assert same_check or not any(board.is_capture(m) == board.is_capture(best)
                                     and board.gives_check(m) == board.gives_check(best) for m in others), doc.group
        kinds["same kind" if same_check else "capture only"] += 1
    assert kinds["same kind"] > 3000 and kinds["capture only"] > 1000


def test_skipped_puzzles_are_exactly_those_whose_solution_is_the_only_capture(sample, puzzles):
    kept = {d.group for d in sample.train + sample.test}
    skipped = [pid for pid in puzzles if pid not in kept]
    assert len(skipped) == 924
    for pid in skipped:
        board, best, others = solution_and_others(puzzles[pid])
        assert board.is_capture(best) and not any(board.is_capture(m) for m in others), pid


def test_the_notation_alone_does_not_give_the_label_away(sample):
    """On the sample's test split, "the candidate captures" and a logistic regression on the candidate's
    surface (piece letter, x, =, length) stay near chance; before they scored 0.592 and 0.594, above what
    a 1.5B model's probe reached. SAN carries no + or #."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    def surface(doc):
        san = TEXT.fullmatch(doc.text)["san"]
        return {"piece=" + (san[0] if san[0] in "KQRBNO" else "P"): 1, "x": "x" in san, "=": "=" in san, "len": len(san)}

    test_labels = [d.label for d in sample.test]
    rule = sum(("x" in TEXT.fullmatch(d.text)["san"]) == bool(d.label) for d in sample.test) / len(sample.test)
    assert 0.46 < rule < 0.54  # 0.491
    vectorizer = DictVectorizer()
    probe = LogisticRegression(max_iter=2000).fit(vectorizer.fit_transform(map(surface, sample.train)),
                                                  [d.label for d in sample.train])
    surface_acc = (probe.predict(vectorizer.transform(map(surface, sample.test))) == test_labels).mean()
    assert surface_acc < 0.56  # 0.547, from the piece letter: king moves are rarely solutions
    assert not any(re.search(r"Candidate move: \S*[+#]", d.text) for d in sample.train + sample.test)

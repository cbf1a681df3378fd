"""Chess: is this candidate the puzzle's best move? (Lichess puzzles, binary form)

A Lichess puzzle row gives `FEN` (the position before the opponent's setup
move) and `Moves` in UCI: `Moves[0]` is the setup move, `Moves[1]` the
solver's first move. One doc per puzzle, for the position after `Moves[0]`:

    Chess position (FEN): {fen after Moves[0]}
    {White|Black} to move. Last move: {Moves[0] in SAN}.
    Candidate move: {candidate in SAN} ({candidate in UCI})
    Is this the best move?

The candidate is `Moves[1]` (label 1) or another legal move (label 0),
and SAN is written without its check/mate marks (+, #), so that the
notation alone does not give the label away. The wrong move is of the
solution's kind (capture or not, check or not) where the position has one
(7470 of the sample's 11717 puzzles), else of its capture status (3323;
the check then differs, which the notation does not show). The 924
puzzles whose solution is their only capture are skipped and counted: any
wrong move there is quiet, so "the candidate has x" would be the label.
Skipping them costs 7.9% of the puzzles; keeping only same-kind puzzles
would cost 36% and leave a surface probe no weaker (0.558 against 0.547).
On the test split of the sample (2651 docs): "SAN has x -> label 1" scores
0.491 and a logistic regression on the SAN's surface (piece letter, x, =,
length) 0.547, all of it from the piece letter (king moves are rarely the
solution, a fact of chess the task keeps). Before (prompt_version 2, wrong
moves from all moves when no same-kind one existed): 0.592 and 0.594.
When the solution mates, the wrong move is never another mating move
(Lichess accepts any mate in one). The coin and the wrong move come from an
rng seeded by the PuzzleId, so a puzzle's doc never depends on the source,
the filters or the other puzzles; labels are 50/50 up to chance (use
`--balance` for exact). Group = PuzzleId; split 75/25 by its hash.

Every row is checked with python-chess: the FEN parses and is a valid
position, and Moves[0] and then Moves[1] are legal. Rows that fail, and
positions with only one legal move, are skipped and counted by reason.

Sources, in order: `options.data` (a Lichess puzzle CSV, plain, .gz or
.zst, with or without the header line), the hub's `Lichess/chess-puzzles`
when reachable, else the 11717-puzzle CC0 sample shipped in
`w2s_gguf/data/chess/` (see SOURCE.md there). Filters: min_rating,
max_rating (inclusive) and themes (keep puzzles with any of them). When
more than `options.extra["max_puzzles"]` (default 50000) puzzles pass the
filters, a fixed sample of that many is kept (the smallest PuzzleId hashes),
since checking one puzzle costs about 0.25 ms.
"""

from __future__ import annotations

import heapq
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

if TYPE_CHECKING:  # imported where puzzles are read: python-chess builds its attack tables on import (0.1-0.2 s)
    import chess

from ..errors import W2SError
from ..common.network import hub_reachable
from . import Doc, PromptingForm, Task, TaskDocs, TaskOptions, register
from ._chess_rows import GET_DATA, REQUIRED, Filter, check_filters, csv_rows, nothing_left
from ._common import hub_split, is_test_group, item_rng, require_columns, stable_int

PROMPT = "Chess position (FEN): {fen}\n{side} to move. Last move: {last}.\nCandidate move: {san} ({uci})\nIs this the best move?"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "chess" / "lichess_puzzles.csv.gz"
HUB_NAME = "Lichess/chess-puzzles"
MAX_PUZZLES = 50_000
NO_SAME_CAPTURE = "no other move with the solution's capture status (x would give the label away)"


@register
class ChessPuzzles(Task):
    name = "chess"
    description = "Lichess puzzles: is the candidate move the puzzle's solution? (one doc per puzzle, 50/50)"
    source = "--data Lichess CSV; else hub Lichess/chess-puzzles; offline: 11717-puzzle sample shipped in the package"
    license = "CC0 1.0"
    size = "10793 of 11717 (hub: ~4M)"
    prompt_version = "3"  # 2: wrong candidates matched on capture/check; 3: positions without one of the same capture skipped
    prompting = PromptingForm("\nAnswer:", (" no", " yes"))  # the text already asks: Is this the best move?

    def available_offline(self) -> bool:
        return True  # the sample ships with the package

    def load(self, options: TaskOptions) -> TaskDocs:
        check_filters(options)
        if options.data:
            rows, where = csv_rows(Path(options.data).expanduser()), f"file:{options.data}"
        elif hub_reachable():
            rows, where = hub_rows(), f"hub:{HUB_NAME}"
        else:
            rows, where = csv_rows(SAMPLE), "the packaged Lichess puzzle sample (w2s_gguf/data/chess, CC0; hub unreachable)"
        return build_docs(rows, where, options)


def hub_rows() -> Iterator[dict[str, Any]]:
    ds = hub_split(HUB_NAME, "train", hint="or pass --data with a Lichess puzzle CSV, or set HF_HUB_OFFLINE=1 to use the packaged sample")
    require_columns(ds, REQUIRED, f"hub dataset {HUB_NAME}")
    for batch in ds.select_columns(list(REQUIRED)).iter(batch_size=10_000):
        for i in range(len(batch["PuzzleId"])):
            yield {c: batch[c][i] for c in REQUIRED}


# ---------------------------------------------------------------- docs


def build_docs(rows: Iterable[dict[str, Any]], where: str, options: TaskOptions) -> TaskDocs:
    skipped: Counter = Counter()
    keep = Filter(options, skipped)
    cap = int(options.extra.get("max_puzzles", MAX_PUZZLES))
    # nsmallest keeps memory at `cap` rows even for the full 4-million-row database.
    chosen = heapq.nsmallest(cap, keep(rows), key=lambda r: stable_int("sample", str(r.get("PuzzleId", ""))))
    if keep.passed > cap:
        skipped[f"not in the fixed sample of max_puzzles={cap}"] = keep.passed - cap
    train, test, seen = [], [], set()
    for row in chosen:
        made = puzzle_doc(row)
        if isinstance(made, str):
            skipped[made] += 1
        elif made.group in seen:
            skipped["duplicate PuzzleId"] += 1
        else:
            seen.add(made.group)
            (test if is_test_group(made.group) else train).append(made)
    if keep.rows == 0:
        raise W2SError(f"{where} has a header but no puzzle rows; {GET_DATA}")
    if not train and not test:
        raise W2SError(nothing_left(where, keep, skipped))
    return TaskDocs(train, test, where, dict(skipped))


def puzzle_doc(row: dict[str, Any]) -> Doc | str:
    """The doc for one puzzle row, or the reason it is skipped."""
    import chess

    pid = str(row.get("PuzzleId") or "").strip()
    moves = str(row.get("Moves") or "").split()
    if not pid:
        return "empty PuzzleId"
    if len(moves) < 2:
        return "fewer than 2 moves"
    try:
        board = chess.Board(str(row.get("FEN") or ""))
    except ValueError:
        return "unparseable FEN"
    if not board.is_valid():
        return "FEN is not a legal position"
    try:
        setup, best = chess.Move.from_uci(moves[0]), chess.Move.from_uci(moves[1])
    except ValueError:
        return "unparseable UCI move"
    if not board.is_legal(setup):
        return "illegal setup move (Moves[0])"
    last = _san(board, setup)
    board.push(setup)
    if not board.is_legal(best):
        return "illegal solution move (Moves[1])"
    rng = item_rng("chess", pid)
    label = int(rng.random() < 0.5)
    wrong = wrong_move(board, best, rng)  # whatever the coin says: a skip must not depend on the label
    if isinstance(wrong, str):
        return wrong
    move = best if label else wrong
    side = "White" if board.turn == chess.WHITE else "Black"
    text = PROMPT.format(fen=board.fen(), side=side, last=last, san=_san(board, move), uci=move.uci())
    return Doc(text=text, label=label, group=pid)


def wrong_move(board: chess.Board, best: chess.Move, rng) -> chess.Move | str:
    """A random legal move other than `best` that the notation cannot tell from it, or the skip reason.

    Solutions are mostly captures and checks and random moves mostly are
    not, so the wrong move is drawn from the moves of the solution's kind
    (capture and check status) and, where there are none, from those of its
    capture status (the SAN's `x`; a check is not written, see _san). A
    position with no other move of the solution's capture status is
    skipped: there "the candidate has x" would be the label (module
    docstring: the numbers). Never a mate when `best` mates (any mate
    solves those).
    """
    # Sorted, so the choice does not depend on python-chess's move generation order.
    others = sorted((m for m in board.legal_moves if m != best), key=lambda m: (m.from_square, m.to_square, m.promotion or 0))
    if _mates(board, best):
        others = [m for m in others if not _mates(board, m)]
    if not others:
        return "only one legal move"
    capture, check = _kind(board, best)
    for pool in ([m for m in others if _kind(board, m) == (capture, check)],
                 [m for m in others if board.is_capture(m) == capture]):
        if pool:
            return pool[int(rng.integers(len(pool)))]
    return NO_SAME_CAPTURE


def _san(board: chess.Board, move: chess.Move) -> str:
    """SAN without + and #: whether a move checks or mates is for the model to see."""
    return board.san(move).rstrip("+#")


def _kind(board: chess.Board, move: chess.Move) -> tuple[bool, bool]:
    return board.is_capture(move), board.gives_check(move)


def _mates(board: chess.Board, move: chess.Move) -> bool:
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()

"""Self-training: train on the weak labels, relabel B with the student, retrain; R rounds.

Source: Burns et al. 2023 sec. 4.3.1 (bootstrapping). The paper bootstraps
through a chain of intermediate models; with one strong model the student relabels B itself. The new targets are
the student's soft probabilities on B (as weak labels are soft), and every
round trains with the same seed, so bootstrap-0 is xent exactly.
"""

from __future__ import annotations

from ..stacked import HeadJob
from . import Method, Run, W2SInput, finish, parse_number, register


@register
class Bootstrap(Method):
    name = "bootstrap"
    order = 25
    summary = "train on weak labels, then R times: relabel B with the student and retrain"
    forms = "bootstrap (R = 1), bootstrap-R (R >= 0 rounds)"
    source = "Burns et al. 2023 sec. 4.3.1 (bootstrapping)"

    def __init__(self, arg: str | None = None):
        super().__init__(arg)
        self.rounds = 1 if arg is None else parse_number(self, int, 0, None, what="R")

    @property
    def spec(self) -> str:
        return f"bootstrap-{self.rounds}"

    def run(self, data: W2SInput) -> Run:
        self.check_input(data)
        targets, teacher = data.weak, None  # round 0's teacher is the weak model
        for round_ in range(self.rounds + 1):
            (head,) = yield [HeadJob(data.x_train, targets, seed=data.seed)]
            if round_ < self.rounds:  # this student teaches the next round
                targets, teacher = head.predict_proba(data.x_train), head.predict_proba(data.x_test)
        return finish(self, data, head, {"rounds": self.rounds}, targets, None, teacher)

"""The salience table of docs/prompting.md: prompting baselines and label efficiency for several models and tasks.

    python benchmarks/salience_table.py --out salience-runs            # runs (or resumes) every task, then prints
    python benchmarks/salience_table.py --out salience-runs --print    # prints the table from the finished runs

One `run_experiment` per task with `--prompting`: the first model is the weak one for every pair (its
probe is the floor of each prompting PGR and the teacher of each probe PGR), the others are strong.
Scores and features are cached, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

MODELS = ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
TASKS = ["sentiment", "sciq", "chess", "boolq"]


def run(args) -> None:
    from w2s_gguf.experiment import ExperimentConfig, run_experiment

    for task in args.tasks:
        config = ExperimentConfig(models=args.models, task=task, n_train=args.n_train, n_test=args.n_test,
                                  seeds=args.seeds, methods=["xent"], max_tokens=args.max_tokens, balance=True,
                                  weak_models=1, prompting=True, shots=args.shots, n_threads=args.threads)
        run_experiment(config, args.out / task, progress=False, command=f"benchmarks/salience_table.py ({task})",
                       cache_root=args.cache_root)


def table(args) -> str:
    from w2s_gguf.report.format import pgr_text
    from w2s_gguf.report.salience import est, labels_text, prompt_pgr_text, salient
    from w2s_gguf.results import load_results

    models, pairs = [], []
    for task in args.tasks:
        path = args.out / task
        if not (path / "results.json").is_file():
            continue
        results = load_results(path)
        p = results.prompting
        probe = {(q.weak, q.strong): q.summary["xent"] for q in results.pairs}
        for m in p.models:
            yes, _ = salient(m, p.shots)
            full = m.curve.points[-1]
            models.append(f"| {task} | {m.model} | {est(m.zero_shot.acc)} | {est(m.zero_shot.auroc)} | "
                          f"{est(m.few_shot.acc)} | {est(m.few_shot.auroc)} | {full.acc_mean:.3f} | "
                          f"{labels_text(m.curve)} | {'yes' if yes else 'no'} |")
        for q in p.pairs:
            s = probe.get((q.weak, q.strong))
            pp = prompt_pgr_text(q)
            sp = pgr_text(s) if s else "-"
            pairs.append(f"| {task} | {q.weak} → {q.strong} | {q.floor_acc:.3f} | {q.ceiling_acc:.3f} | {est(q.acc)} | "
                         f"{pp} | {sp} |")
    k = args.shots
    head = [f"| task | model | zero-shot acc | zero-shot AUROC | {k}-shot acc (true) | {k}-shot AUROC (true) | "
            "probe acc (all of A) | labels to 90% | salient? |", "|" + "---|" * 9]
    pair_head = [f"| task | pair | floor: weak probe | ceiling: strong {k}-shot (true) | strong {k}-shot (weak labels) | "
                 "prompting PGR | probe PGR (xent) |", "|" + "---|" * 7]
    return "\n".join(head + models) + "\n\n" + "\n".join(pair_head + pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache-root", type=Path, default=None,
                        help="feature and score cache folder (default: the one under $W2S_GGUF_HOME)")
    parser.add_argument("--print", action="store_true", help="only print the table of finished runs")
    args = parser.parse_args()
    if not args.print:
        run(args)
    print(table(args))


if __name__ == "__main__":
    main()

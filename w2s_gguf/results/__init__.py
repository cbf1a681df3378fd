"""The typed results of a run: the schema every stage writes and reads, and results.json on disk.

    from w2s_gguf.results import load_results
    r = load_results("w2s-results/sentiment-smollm2-135m-to-gemma3-270m")
    r.pairs[0].summary["xent"].pgr_median
    r.to_frame()          # a tidy pandas DataFrame

May import: errors, common.
"""

from .files import check_version, from_json, load_results, refuse_newer_results, results_path, to_json, write_results
from .prompting import (CurvePoint, Estimate, FewShot, LabelCurve, ModelPrompting, PairPrompting, Prompting,
                        PromptPairSeed, PromptSeed, ZeroShot)
from .schema import (KIND, RESULTS_NAME, SCHEMA_VERSION, Difference, GroundTruth, ModelInfo, PairResult, PairSeed,
                     Plan, Results, SeedScore, SklearnPairSeed, SklearnScores, Summary, TaskInfo, TextBaseline,
                     TransferScore)

__all__ = ["CurvePoint", "Estimate", "FewShot", "LabelCurve", "ModelPrompting", "PairPrompting", "Prompting",
           "PromptPairSeed", "PromptSeed", "ZeroShot", "KIND", "RESULTS_NAME", "SCHEMA_VERSION", "Difference",
           "GroundTruth", "ModelInfo", "PairResult", "PairSeed", "Plan", "Results", "SeedScore", "SklearnPairSeed",
           "SklearnScores", "Summary", "TaskInfo", "TextBaseline", "TransferScore",
           "check_version", "from_json", "load_results", "refuse_newer_results", "results_path", "to_json",
           "write_results"]

"""What `toxbench spans` and the leaderboard say about a run's explanations: span agreement
with gold (SemEval character F1 and the rest of toxbench.explain.span_metrics) beside the two
SemEval floors, and faithfulness means with 95% t-intervals. Pure functions of explanation lines
(and the texts, for the all-characters floor)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from toxbench.explain.span_metrics import floors, span_scores


def mean_ci(values: list[float]) -> dict | None:
    """Mean and 95% t-interval (None for no values; the interval is the mean itself for one)."""
    if not values:
        return None
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "ci95": [mean, mean]}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / math.sqrt(n)) if sd > 0 else (mean, mean)
    return {"n": n, "mean": mean, "ci95": [float(low), float(high)]}


@dataclass
class ExplanationSummary:
    explained: int
    errors: int
    with_spans: int  # explanations that extracted at least one span
    spans: dict | None = None  # span scores against gold, when the dataset has gold spans
    floors: dict | None = None  # SemEval's empty and all-characters predictions on the same posts
    faithfulness: dict = field(default_factory=dict)  # measure -> mean_ci
    ig_delta_max: float | None = None  # the largest |convergence delta| of integrated gradients

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def summarise(lines: dict[str, dict], texts: dict[str, str] | None = None) -> ExplanationSummary:
    ok = [line for line in lines.values() if line.get("status") == "ok"]
    summary = ExplanationSummary(len(ok), len(lines) - len(ok), sum(bool(line["spans"]) for line in ok))
    scored = [line for line in ok if line.get("gold_spans") is not None]
    if scored:
        pairs = [([tuple(s) for s in line["spans"]], [tuple(s) for s in line["gold_spans"]]) for line in scored]
        summary.spans = span_scores(pairs).as_dict()
        if texts and all(line["sample_id"] in texts for line in scored):
            summary.floors = floors([g for _, g in pairs], [texts[line["sample_id"]] for line in scored])
    for measure in ("comprehensiveness", "sufficiency", "aopc"):
        values = [line["faithfulness"][measure] for line in ok if line.get("faithfulness", {}).get(measure) is not None]
        if values:
            summary.faithfulness[measure] = mean_ci(values)
    deltas = [abs(line["ig_delta"]) for line in ok if line.get("ig_delta") is not None]
    summary.ig_delta_max = max(deltas) if deltas else None
    return summary

"""Annotation agreement (the ToxiFrench paper's Section 3.3, Table 2 and Appendix D) and the
high-confidence rule: pure functions of label columns.

- Percent agreement with its Wilson 95% interval (scipy's `binomtest(...).proportion_ci`, the
  interval Appendix D chooses for proportions near 0 or 1), and Cohen's kappa (scikit-learn).
- The validation table: a re-label on 0 / 0.25 / 0.75 / 1 (no / maybe no / maybe yes / yes),
  grouped yes when above 0.5, broken down by the first label.
- The high-confidence rule (Section 3.2): a comment is auto-labelled non-toxic when the model
  concluded non-toxic or scored below `threshold` (the paper does not print its threshold; 4 fits
  its rubric, where 3 is "ambiguous tone" and 4 "strong mockery"). The rest go to humans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources

LEVELS = {0.0: "no", 0.25: "maybe_no", 0.75: "maybe_yes", 1.0: "yes"}
ROW_NAMES = {
    "grouped_yes": "Grouped yes",
    "yes": "Yes",
    "maybe_yes": "Maybe yes",
    "grouped_no": "Grouped no",
    "maybe_no": "Maybe no",
    "no": "No",
}
DEFAULT_THRESHOLD = 4.0


@dataclass(frozen=True)
class Proportion:
    k: int
    n: int
    value: float  # k / n
    low: float  # Wilson 95% interval
    high: float

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        return f"{self.k}/{self.n} = {100 * self.value:.1f}% [{100 * self.low:.2f}, {100 * self.high:.2f}]"


def proportion(k: int, n: int) -> Proportion:
    from scipy.stats import binomtest

    if n == 0:
        return Proportion(0, 0, float("nan"), float("nan"), float("nan"))
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return Proportion(k, n, k / n, float(ci.low), float(ci.high))


def validation_table(first: Sequence[int], second: Sequence[float]) -> dict[int, dict[str, Proportion]]:
    """For each first label (1 toxic, 0 non-toxic): the share of each re-label level and of the
    grouped levels (yes: above 0.5)."""
    table = {}
    for cls in (1, 0):
        scores = [s for f, s in zip(first, second) if f == cls]
        n = len(scores)
        counts = {name: sum(LEVELS[s] == name for s in scores) for name in LEVELS.values()}
        grouped_yes = sum(s > 0.5 for s in scores)
        table[cls] = {
            "grouped_yes": proportion(grouped_yes, n),
            "yes": proportion(counts["yes"], n),
            "maybe_yes": proportion(counts["maybe_yes"], n),
            "grouped_no": proportion(n - grouped_yes, n),
            "maybe_no": proportion(counts["maybe_no"], n),
            "no": proportion(counts["no"], n),
        }
    return table


def agreement(first: Sequence[int], second: Sequence[int]) -> dict:
    """Percent agreement (Wilson interval) and Cohen's kappa of two 0/1 label columns."""
    from sklearn.metrics import cohen_kappa_score

    agree = sum(a == b for a, b in zip(first, second))
    return {"agreement": proportion(agree, len(first)), "kappa": float(cohen_kappa_score(first, second))}


def paper_table2() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    return tomllib.loads(resources.files("toxbench.analysis").joinpath("paper_table2.toml").read_text("utf-8"))


def paper_differences(table: dict[int, dict[str, Proportion]]) -> list[str]:
    """Where the paper's printed Table 2 differs from the release's file (by more than rounding),
    and whether its columns add up."""
    paper = paper_table2()
    notes = []
    for cls, key in ((1, "toxic"), (0, "non_toxic")):
        printed = dict(zip(paper["rows"], paper[key]))
        for row, value in printed.items():
            computed = 100 * table[cls][row].value
            if abs(computed - value) > 0.05:
                notes.append(
                    f"initially {key.replace('_', '-')}, {ROW_NAMES[row].lower()}: the paper prints {value:.1f}%, "
                    f"the release's file gives {computed:.1f}% ({table[cls][row].k}/{table[cls][row].n})"
                )
        for parts, what in (
            (("grouped_yes", "grouped_no"), "grouped yes and grouped no"),
            (("yes", "maybe_yes", "maybe_no", "no"), "yes, maybe yes, maybe no and no"),
        ):
            total = sum(printed[p] for p in parts)
            if abs(total - 100) > 0.05:
                notes.append(f"initially {key.replace('_', '-')}: the paper's {what} add up to {total:.1f}%, not 100%")
    return notes


def high_confidence(
    conclusions: Sequence[int], scores: Sequence[float], threshold: float = DEFAULT_THRESHOLD
) -> list[bool]:
    """Which comments the rule auto-labels non-toxic: concluded non-toxic, or scored below the threshold."""
    return [c == 0 or s < threshold for c, s in zip(conclusions, scores)]


def rule_report(covered: Sequence[bool], human: Sequence[int] | None = None) -> dict:
    """Coverage, and where human labels exist, how many covered comments humans call non-toxic."""
    report = {"coverage": proportion(sum(covered), len(covered))}
    if human is not None:
        labels = [h for c, h in zip(covered, human) if c]
        report["agreement"] = proportion(sum(h == 0 for h in labels), len(labels))
    return report

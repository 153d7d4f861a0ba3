"""The exact McNemar test, shared by `compare` (two runs), the leaderboard (each row against the
next) and `calibrate` (a run's own labels against its new threshold's): one module below all three,
so none of them imports another for it."""

from __future__ import annotations

import math
from fractions import Fraction


def format_p(p: float | None) -> str:
    """A p-value as every table and command prints it: three decimals, "<0.001" below that, "–"
    for none (the last row of a board)."""
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def mcnemar_exact(only_a_right: int, only_b_right: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against a fair coin.

    For p = 1/2 the binomial is symmetric, so the two-sided p is twice the smaller tail, computed
    exactly with integers. This equals scipy's `binomtest(k, n, 0.5).pvalue` (a test checks it) but
    does not import scipy.stats, which would add most of a second to every leaderboard."""
    n = only_a_right + only_b_right
    if n == 0:
        return 1.0
    k = min(only_a_right, only_b_right)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, float(Fraction(2 * tail, 2**n)))

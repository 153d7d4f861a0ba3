"""Cost of a request from a price table (USD per million input / output tokens)."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from importlib import resources

from toxbench._util import PRICES_ENV, read_toml
from toxbench.errors import ToxbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@lru_cache(maxsize=8)
def price_table(override: str | None = None) -> dict[str, tuple[float, float]]:
    table = tomllib.loads(resources.files("toxbench.run").joinpath("prices.toml").read_text("utf-8"))
    path = override or os.environ.get(PRICES_ENV)
    if path:
        try:
            table.update(read_toml(path, "price table"))
        except ToxbenchError as exc:
            raise ToxbenchError(f'{exc}; write lines like "gpt-4o" = [2.5, 10.0]') from None
    try:
        return {model: (float(v[0]), float(v[1])) for model, v in table.items()}
    except (TypeError, ValueError, IndexError, KeyError):
        raise ToxbenchError(
            f'{path}: every price is [input, output] in USD per million tokens, e.g. "gpt-4o" = [2.5, 10.0]'
        ) from None


def cost_usd(
    model: str, tokens_in: int | None, tokens_out: int | None, table: dict[str, tuple[float, float]]
) -> float | None:
    """None when the model has no price or the backend reported no token counts."""
    if model not in table or tokens_in is None:
        return None
    price_in, price_out = table[model]
    return (tokens_in * price_in + (tokens_out or 0) * price_out) / 1_000_000

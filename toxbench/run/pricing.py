"""Cost of a request from a price table (USD per million input / output tokens, live and through
the provider's batch API)."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

from toxbench._util import PRICES_ENV, read_toml
from toxbench.errors import ToxbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


BATCH_DISCOUNT = 0.5  # every provider's batch price against its live one (OpenAI, Anthropic, Gemini, Mistral)
SHAPE = '"gpt-4o" = [2.5, 10.0] (input, output), or [2.5, 10.0, 1.25, 5.0] with the batch prices'


class Price(NamedTuple):
    """USD per million tokens; a model listed without batch prices is billed BATCH_DISCOUNT of its
    live ones through a batch API."""

    input: float
    output: float
    batch_input: float
    batch_output: float


def _price(value) -> Price:
    if not isinstance(value, list) or len(value) not in (2, 4):
        raise ValueError(value)
    live = float(value[0]), float(value[1])
    batch = (
        (float(value[2]), float(value[3])) if len(value) == 4 else (live[0] * BATCH_DISCOUNT, live[1] * BATCH_DISCOUNT)
    )
    return Price(*live, *batch)


@lru_cache(maxsize=8)
def price_table(override: str | None = None) -> dict[str, Price]:
    table = tomllib.loads(resources.files("toxbench.run").joinpath("prices.toml").read_text("utf-8"))
    path = override or os.environ.get(PRICES_ENV)
    if path:
        try:
            table.update(read_toml(path, "price table"))
        except ToxbenchError as exc:
            raise ToxbenchError(f"{exc}; write lines like {SHAPE}") from None
    try:
        return {model: _price(v) for model, v in table.items()}
    except (TypeError, ValueError, IndexError, KeyError):
        raise ToxbenchError(f"{path}: every price is in USD per million tokens, e.g. {SHAPE}") from None


def cost_usd(
    model: str, tokens_in: int | None, tokens_out: int | None, table: dict[str, Price], batch: bool = False
) -> float | None:
    """None when the model has no price or the backend reported no token counts; `batch`: at the
    batch API's price."""
    if model not in table or tokens_in is None:
        return None
    price = table[model]
    price_in, price_out = (price.batch_input, price.batch_output) if batch else (price.input, price.output)
    return (tokens_in * price_in + (tokens_out or 0) * price_out) / 1_000_000

"""The span objectives' terms by hand, on tensors small enough to check with a pencil."""

from __future__ import annotations

import pytest
import torch

from toxbench.finetune.span_data import token_roles
from toxbench.finetune.span_objectives import Objective, eligible, gcloss_term, rrr_term


def test_token_roles_from_offsets():
    # [CLS] "you" "stu" "##pid" [SEP] with the span "stupid" at 4..10
    assert token_roles([(0, 0), (0, 3), (4, 7), (7, 10), (0, 0)], ((4, 10),)) == [0, 1, 2, 2, 0]
    assert token_roles([(0, 0), (0, 3), (0, 0)], None) == [0, 1, 0]


def test_rows_need_a_toxic_label_a_span_token_and_another_token():
    roles = torch.tensor([[0, 1, 2, 0], [0, 2, 2, 0], [0, 1, 2, 0], [0, 1, 1, 0]])
    assert eligible(roles, torch.tensor([1, 1, 0, 1])).tolist() == [True, False, False, False]


def test_rrr_sums_squared_gradients_outside_the_spans():
    grads = torch.tensor([[[9.0, 9.0], [1.0, 2.0], [5.0, 5.0]], [[1.0, 1.0], [3.0, 0.0], [0.0, 4.0]]])
    roles = torch.tensor([[0, 1, 2], [0, 1, 1]])
    # row 0: only token 1 is outside the span: 1 + 4; row 1 is not eligible
    assert rrr_term(grads, roles, torch.tensor([True, False])).item() == 5.0
    assert rrr_term(grads, roles, torch.tensor([True, True])).item() == (5.0 + 25.0) / 2


def test_gcloss_margin_and_percentile_terms():
    roles = torch.tensor([[0, 1, 2, 1]])
    rows = torch.tensor([True])
    # span mean 0.6, other mean -0.25: the margin 0.3 is met; the 80th percentile of (0.5, 0.6, -1.0) is 0.56 <= 0.6;
    # the median magnitude is 0.6 and the other tokens' are 0.5 and 1.0: (0 + 0.4) / 2, times alpha 0.5
    saliency = torch.tensor([[0.0, 0.5, 0.6, -1.0]])
    assert gcloss_term(saliency, roles, rows, Objective(kind="gcloss")).item() == pytest.approx(0.1)
    # a wider margin is not met: 2.0 - 0.85
    assert gcloss_term(saliency, roles, rows, Objective(kind="gcloss", margin=2.0)).item() == pytest.approx(1.15 + 0.1)
    # scaled by the largest magnitude: the same curve ten times larger gives the same loss
    assert gcloss_term(saliency * 10, roles, rows, Objective(kind="gcloss")).item() == pytest.approx(0.1)

"""The adapter registry: built-ins load on demand, unknown names say what exists."""

import pytest

from toxbench.adapters.registry import adapter_names, get_adapter
from toxbench.errors import ToxbenchError


def test_replay_is_registered_with_its_kind():
    from toxbench.adapters.replay import ReplayAdapter

    assert "replay" in adapter_names()
    cls = get_adapter("replay")
    assert cls is ReplayAdapter and cls.kind == "replay" and cls.name == "replay"


def test_unknown_adapter_lists_known_ones():
    with pytest.raises(ToxbenchError, match=r"unknown adapter 'nope'; known: .*replay"):
        get_adapter("nope")

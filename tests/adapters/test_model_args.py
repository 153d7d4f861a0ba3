"""`toxbench adapters ADAPTER` lists the adapter's --model-arg keys with their default and meaning,
read from the constructor's signature and its `Args:` docstring (which the API reference renders):
a key added without a meaning fails here."""

import inspect

import pytest

from toxbench.adapters.registry import BUILTIN_MODULES, get_adapter, model_args


@pytest.mark.parametrize("name", sorted(BUILTIN_MODULES))  # not the adapters other tests register
def test_every_model_arg_has_a_meaning_and_matches_the_constructor(name):
    keys = model_args(name)
    params = inspect.signature(get_adapter(name).__init__).parameters
    own = [p for p in params if p not in ("self", "model", "data", "kwargs")]
    assert [k.name for k in keys][: len(own)] == own
    for key in keys:
        assert key.meaning and not key.meaning.endswith(":"), (name, key.name)


def test_a_guard_takes_the_hf_keys_but_not_the_mode_it_sets():
    keys = {k.name: k for k in model_args("shieldgemma")}
    assert keys["threshold"].default == 0.5 and keys["batch_size"].default == 8 and "device" in keys
    assert "mode" not in keys  # ShieldGemma always scores; passing mode would be a TypeError


def test_adapters_adapter_prints_the_keys(cli):
    code, out, err = cli("adapters", "baseline")
    assert code == 0, err
    assert "ngram_min" in out and "Shortest character n-gram" in out and "4.0" in out
    assert "toxbench run --model baseline:MODEL --model-arg ngram_min=VALUE" in out


def test_adapters_names_an_unknown_adapter(cli):
    code, _out, err = cli("adapters", "opneai")
    assert code == 2 and "unknown adapter 'opneai'" in err and "openai" in err and "Traceback" not in err

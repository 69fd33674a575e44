"""The one check of a value against fixed choices, used by every layer."""

from __future__ import annotations

import pytest

from eventvision.errors import ConfigError, check_choice


def test_check_choice_names_the_value_and_the_choices():
    check_choice("split", "test", ("train", "test"))  # a valid value passes
    with pytest.raises(ConfigError) as err:
        check_choice("split", "val", ("train", "test"))
    assert str(err.value) == "split must be one of ['train', 'test'], got 'val'"
    assert isinstance(err.value, ValueError)  # callers that caught ValueError still do


def test_check_choice_takes_a_mapping_as_its_keys():
    with pytest.raises(ConfigError, match=r"one of \['raw', 'jaer'\], got 3"):
        check_choice("orientation", 3, {"raw": 0, "jaer": 1})

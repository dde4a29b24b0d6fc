"""The command's option groups against what they configure."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from hyenadna import HyenaDNAError
from hyenadna.data.datamodules import LabelledDataModule
from hyenadna.training.options import LabelledData, ModelOptions


def test_labelled_data_options_and_the_data_module_agree_on_every_default():
    """LabelledData's fields are LabelledDataModule's arguments by name; padding_side defaulted
    to right as an option and to left in the data module, so Python users got the other one."""
    arguments = inspect.signature(LabelledDataModule.__init__).parameters
    differ = []
    for field in dataclasses.fields(LabelledData):
        assert field.name in arguments, f"--data.{field.name} is no argument of LabelledDataModule"
        option = field.default_factory() if field.default is dataclasses.MISSING else field.default
        default = arguments[field.name].default
        if default is not inspect.Parameter.empty and option != default and not (option == {} and default is None):
            differ.append(f"{field.name}: option {option!r}, data module {default!r}")
    assert not differ, differ


def test_deepen_to_is_a_positive_depth_for_hyena_models_only():
    assert ModelOptions("tiny-1k-chr20", deepen_to=4).deepen_to == 4
    with pytest.raises(HyenaDNAError, match="--model.deepen_to"):
        ModelOptions("tiny-1k", deepen_to=0)
    with pytest.raises(HyenaDNAError, match="the cnn baseline has no Hyena blocks"):
        ModelOptions("cnn", deepen_to=3)

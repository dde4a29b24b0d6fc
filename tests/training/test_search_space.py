"""Search spaces: read from YAML or a mapping, every value checked against its option before any
trial runs, sampled by Optuna within bounds, applied to the recipe's option groups."""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna
import pytest

from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadOptions
from hyenadna.training.optim import OptimOptions
from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions
from hyenadna.training.search_space import (
    DEFAULT_SPACE,
    check_space,
    options_of,
    read_search_space,
    stored_params,
    with_params,
)


@dataclass
class Recipe:  # the option groups a fine-tune takes, as pipelines.finetune.FinetuneRecipe holds them
    data: LabelledData = field(default_factory=lambda: LabelledData(train="x.csv"))
    model: ModelOptions = field(default_factory=ModelOptions)
    head: HeadOptions = field(default_factory=HeadOptions)
    tuning: FinetuneOptions = field(default_factory=FinetuneOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    trainer: TrainerOptions = field(default_factory=TrainerOptions)


def test_the_default_space_reads_and_passes_its_checks():
    dims = {d.name: d for d in read_search_space(None)}
    assert set(dims) == set(DEFAULT_SPACE)
    assert dims["optim.lr"].log and not dims["optim.lr"].integer
    assert dims["optim.warmup_steps"].integer and dims["optim.warmup_steps"].step == 50
    assert dims["head.pooling"].choices == ("mean", "max", "last")
    check_space(Recipe(), list(dims.values()))


def test_a_yaml_file_with_every_form(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "optim.lr: {low: 1e-4, high: 1e-2, log: true}\n"  # YAML reads 1e-4 as text: still a number here
        "head.kind: {choices: [linear, likelihood]}\n"
        "data.batch_size: [16, 32]\n"
        "model.overrides.d_model: {low: 32, high: 128, step: 32}\n"
    )
    dims = read_search_space(str(path))
    assert [d.name for d in dims] == ["optim.lr", "head.kind", "data.batch_size", "model.overrides.d_model"]
    assert dims[0].low == pytest.approx(1e-4) and isinstance(dims[0].low, float)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):  # what Optuna draws stays in the space and has the option's type
        trial = study.ask()
        values = {d.name: d.suggest(trial) for d in dims}
        assert 1e-4 <= values["optim.lr"] <= 1e-2 and values["head.kind"] in ("linear", "likelihood")
        assert values["model.overrides.d_model"] in (32, 64, 96, 128) and isinstance(values["data.batch_size"], int)
        recipe = with_params(Recipe(), values)
        assert recipe.optim.lr == values["optim.lr"] and recipe.model.overrides == {"d_model": values[dims[3].name]}
        study.tell(trial, 0.0)


def test_params_land_in_their_groups_and_the_rest_is_kept():
    base = Recipe(model=ModelOptions("tiny-1k", overrides={"n_layer": 1}))
    values = {"optim.lr": 0.01, "model.overrides.d_model": 64, "head.rc_conjoin": True, "head.bidirectional": True}
    recipe = with_params(base, {**values, "head.hidden": 128})
    assert recipe.optim.lr == 0.01 and recipe.optim.weight_decay == base.optim.weight_decay
    assert recipe.model.overrides == {"n_layer": 1, "d_model": 64} and base.model.overrides == {"n_layer": 1}
    assert recipe.head.rc_conjoin and recipe.head.bidirectional and recipe.head.hidden == 128
    assert recipe.data == base.data


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"optim.lr": {"low": 1, "high": 0.1}}, "optim.lr: low .* must be below high"),
        ({"optim.lr": {"low": 0, "high": 0.1, "log": True}}, "a log range needs low > 0"),
        ({"optim.lr": {"low": 0.1, "high": 1, "steps": 2}}, "a range takes low, high and optionally log and step"),
        ({"optim.lr": {"low": "fast", "high": 1}}, "low must be a finite number, got 'fast'"),
        ({"head.pooling": []}, "head.pooling: no choices"),
        ({"head.pooling": [[["mean"]]]}, "choices must be numbers, text, true/false, null or lists of these"),
        ({"head.pooling": [{"mean": 1}]}, "choices must be numbers, text"),
        ({"head.conv_channels": [[32, 32], "[32, 32]"]}, "a choice is repeated"),  # one choice to Optuna
        ({"head.pooling": ["mean", "mean"]}, "a choice is repeated"),
        ({"head.pooling": "mean"}, "give a list of choices or {low, high}"),
    ],
)
def test_a_malformed_dimension_is_refused_naming_it(space, message):
    with pytest.raises(HyenaDNAError, match=message):
        read_search_space(space)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"optimizer.lr": [0.1]}, "search space optimizer.lr: no option group 'optimizer'"),
        ({"optim.learning_rate": [0.1]}, "search space optim.learning_rate: optim has no option learning_rate"),
        ({"optim.lr.x": [0.1]}, "optim has no option lr.x"),
        ({"head.pooling": ["mean", "median"]}, "search space head.pooling: pooling must be one of .*'median'"),
        ({"optim.warmup_steps": {"low": 0.5, "high": 10.5}}, "optim.warmup_steps must be a whole number.*0.5"),
        ({"data.batch_size": [0, 8]}, "search space data.batch_size: --data.batch_size must be"),
        ({"head.hidden": [0, -8]}, "search space head.hidden: --head.hidden must be at least 0"),
        ({"head.bidirectional": [False, "yes"]}, "head.bidirectional: --head.bidirectional must be true or false"),
        ({"optim.warmup_steps": {"low": 0, "high": 200, "step": 2.5}}, "warmup_steps must be a whole number.*2.5"),
        ({"tuning.monitor": ["mcc", "auroc"]}, "tuning.monitor is not searched"),
        ({"trainer.devices": [1, 2]}, "trainer.devices is not searched"),
        ({"data.reader.sequence_col": ["a", "b"]}, "data.reader is not searched"),
    ],
)
def test_a_space_the_recipe_refuses_is_one_error_naming_the_key(space, message):
    with pytest.raises(HyenaDNAError, match=message):
        check_space(Recipe(), read_search_space(space))


def test_enqueued_trials_must_lie_in_the_space():
    dims = read_search_space({"optim.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "data.batch_size": [16, 32]})
    check_space(Recipe(), dims, [{"optim.lr": 1e-3, "data.batch_size": 32}, {"optim.lr": 1e-2}])
    with pytest.raises(HyenaDNAError, match="optim.lr = 0.1 lies outside the search space"):
        check_space(Recipe(), dims, [{"optim.lr": 0.1}])
    with pytest.raises(HyenaDNAError, match="data.batch_size = 8 lies outside"):
        check_space(Recipe(), dims, [{"data.batch_size": 8}])
    with pytest.raises(HyenaDNAError, match="names head.pooling, which the search space does not vary"):
        check_space(Recipe(), dims, [{"head.pooling": "max"}])
    # YAML reads 1e-3 as text: an enqueued number is read as the dimension's type
    assert check_space(Recipe(), dims, [{"optim.lr": "1e-3"}]) == [{"optim.lr": 1e-3}]
    grid = read_search_space({"optim.warmup_steps": {"low": 0, "high": 200, "step": 50}})
    assert check_space(Recipe(), grid, [{"optim.warmup_steps": 150}]) == [{"optim.warmup_steps": 150}]
    with pytest.raises(HyenaDNAError, match="optim.warmup_steps = 30 lies outside the search space"):
        check_space(Recipe(), grid, [{"optim.warmup_steps": 30}])  # off the grid of 50s


def test_list_valued_choices_are_drawn_as_lists_and_stored_as_text():
    """Optuna's categorical values are plain: a list choice is stored as its JSON text and given
    to the recipe as the list, drawn, enqueued or read back from a finished trial."""
    dims = read_search_space({"head.conv_channels": [[32, 32], [64, 64, 64]], "head.kind": ["conv"]})
    assert dims[0].labels == ["[32, 32]", "[64, 64, 64]"] and dims[0].extremes() == [[32, 32], [64, 64, 64]]
    assert check_space(Recipe(), dims, [{"head.conv_channels": [64, 64, 64]}]) == [{"head.conv_channels": [64, 64, 64]}]
    with pytest.raises(HyenaDNAError, match=r"head.conv_channels = \[64, 64\] lies outside the search space"):
        check_space(Recipe(), dims, [{"head.conv_channels": [64, 64]}])
    with pytest.raises(HyenaDNAError, match="head.conv_channels = '\\[32, 32\\]' lies outside"):
        check_space(Recipe(), dims, [{"head.conv_channels": "[32, 32]"}])  # the text is Optuna's, not the option's
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(stored_params(dims, {"head.conv_channels": [64, 64, 64], "head.kind": "conv"}))
    drawn = []
    for _ in range(8):
        trial = study.ask()
        values = {d.name: d.suggest(trial) for d in dims}
        assert with_params(Recipe(), values).head.conv_channels == values["head.conv_channels"]
        drawn.append(values["head.conv_channels"])
        study.tell(trial, float(len(drawn)))
    assert drawn[0] == [64, 64, 64] and [32, 32] in drawn  # the enqueued one first, then both drawn
    assert study.trials[0].params["head.conv_channels"] == "[64, 64, 64]"
    assert options_of(dims, study.trials[0].params) == {"head.conv_channels": [64, 64, 64], "head.kind": "conv"}
    with pytest.raises(HyenaDNAError, match=r"search space head.conv_channels: .*conv_channels.*\(value \[32, 0\]\)"):
        check_space(Recipe(), read_search_space({"head.conv_channels": [[32, 32], [32, 0]]}))


def test_unreadable_space_files_name_the_file(tmp_path):
    with pytest.raises(HyenaDNAError, match="cannot read the search space .*missing.yaml"):
        read_search_space(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim.lr: [0.1\n")
    with pytest.raises(HyenaDNAError, match="bad.yaml is not valid YAML"):
        read_search_space(str(bad))
    bad.write_text("- optim.lr\n")
    with pytest.raises(HyenaDNAError, match="bad.yaml must be a mapping"):
        read_search_space(str(bad))


def test_a_head_value_its_kind_or_the_cnn_refuses_is_refused_before_the_first_trial():
    likelihood = Recipe(head=HeadOptions(kind="likelihood"))
    with pytest.raises(HyenaDNAError, match="search space head.hidden: .*likelihood head has no hidden layer"):
        check_space(likelihood, read_search_space({"head.hidden": [0, 64]}))
    cnn = Recipe(model=ModelOptions("cnn"))
    with pytest.raises(HyenaDNAError, match="search space head.bidirectional: .*CNN reads both sides"):
        check_space(cnn, read_search_space({"head.bidirectional": [False, True]}))
    assert check_space(Recipe(), read_search_space({"head.hidden": [0, 64], "head.bidirectional": [False, True]})) == []

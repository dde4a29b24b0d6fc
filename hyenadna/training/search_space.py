"""A hyper-parameter search space, read from YAML: which recipe options a tuning run varies, and
over what values.

Each key names a fine-tuning option as the command line does, without the dashes
(``optim.lr``, ``head.pooling``, ``model.overrides.d_model``); its value is

* a list: the choices (``head.pooling: [mean, max, last]``); a choice may itself be a list, for
  list-valued options (``head.conv_channels: [[32, 32], [64, 64, 64]]``);
* ``{choices: [...]}``: the same;
* ``{low: L, high: H}``, with optional ``log: true`` and ``step: S``: a range, of integers when
  ``low``, ``high`` (and ``step``) are all integers, else of floats.

Every value a dimension can take is checked against the option's own rules before the first
trial, so a typo in the space is one error naming its key, not a failed trial an hour in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyenadna.errors import HyenaDNAError

DEFAULT_SPACE: dict[str, Any] = {
    "optim.lr": {"low": 3e-4, "high": 3e-3, "log": True},
    "tuning.backbone_lr_scale": {"low": 0.1, "high": 1.0, "log": True},
    "optim.weight_decay": {"low": 0.0, "high": 0.1},
    "optim.warmup_steps": {"low": 0, "high": 200, "step": 50},
    "head.pooling": ["mean", "max", "last"],
    "head.rc_conjoin": [False, True],
    "data.batch_size": [16, 32, 64],
}
"""What ``hyenadna tune`` varies when no space is given: what the task suite's recipes differ in."""

RANGE_KEYS = {"low", "high", "log", "step"}
FREE_FORM = {"model.overrides"}
"""Mapping-valued options whose entries may be varied one by one (``model.overrides.d_model``)."""
FIXED = {
    "data.train", "data.val", "data.test", "data.task", "data.format", "data.reader", "data.target_names",
    "tuning.monitor", "tuning.baseline", "tuning.cnn_baseline",
    "trainer.accelerator", "trainer.devices", "trainer.strategy", "trainer.num_nodes", "trainer.progress_bar",
}  # fmt: skip
"""Options a search may not vary: the data and task, the metric trials are judged by, what a
trial reports, and where it runs (one device each)."""


@dataclass(frozen=True)
class Dimension:
    """One varied option: ``choices``, or a range ``[low, high]`` (``log`` scaled, in ``step``s)."""

    name: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def integer(self) -> bool:
        return not self.choices and all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))

    @property
    def labels(self) -> list[Any]:
        """The choices as Optuna stores them: a list-valued choice (held as a tuple) as its JSON
        text, since Optuna's categorical values are numbers, text, true/false or null."""
        return [json.dumps(list(c)) if isinstance(c, tuple) else c for c in self.choices]

    def stored(self, value: Any) -> Any:
        """``value`` (an option's value, as the recipe takes it) as Optuna stores it."""
        return json.dumps(list(value)) if self.choices and isinstance(value, (list, tuple)) else value

    def option(self, stored: Any) -> Any:
        """What Optuna stored (:meth:`stored`) as the option's value: a list-valued choice's list."""
        if self.choices and isinstance(stored, str) and stored in self.labels:
            choice = self.choices[self.labels.index(stored)]
            return list(choice) if isinstance(choice, tuple) else choice
        return stored

    def suggest(self, trial: Any) -> Any:
        """This dimension's value for an Optuna ``trial``, as the option takes it."""
        if self.choices:
            return self.option(trial.suggest_categorical(self.name, self.labels))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)

    def allows(self, value: object) -> bool:
        """Whether the dimension can give ``value`` (on its grid, where it has a step)."""
        if self.choices:
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        on_grid = not self.step or abs((value - self.low) / self.step - round((value - self.low) / self.step)) < 1e-9
        return self.low <= value <= self.high and on_grid

    def extremes(self) -> list[Any]:
        """The values that bound what this dimension can give: each choice, or both ends and
        one value between (a range of integers with a fractional step gives fractions)."""
        if self.choices:
            return [self.option(label) for label in self.labels]
        if self.integer:
            inner = self.low + int(self.step or 1)
        else:
            inner = self.low + self.step if self.step else (self.low + self.high) / 2
        return [self.low, self.high, inner if inner < self.high else self.high]


def _same(value: object, choice: object) -> bool:
    """``value`` equals ``choice`` in type too (``1`` is not ``true``); a list-valued choice is a tuple."""
    if isinstance(choice, tuple):
        return isinstance(value, (list, tuple)) and len(value) == len(choice) and all(map(_same, value, choice))
    return type(value) is type(choice) and value == choice


def options_of(dimensions: list[Dimension], params: dict[str, Any]) -> dict[str, Any]:
    """A trial's ``params`` as Optuna stored them, as the options' values (see :meth:`Dimension.option`)."""
    by_name = {d.name: d for d in dimensions}
    return {name: by_name[name].option(value) if name in by_name else value for name, value in params.items()}


def stored_params(dimensions: list[Dimension], params: dict[str, Any]) -> dict[str, Any]:
    """Options' values (an enqueued trial's) as Optuna stores them (see :meth:`Dimension.stored`)."""
    by_name = {d.name: d for d in dimensions}
    return {name: by_name[name].stored(value) if name in by_name else value for name, value in params.items()}


def _plain(value: object) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _number(name: str, key: str, value: object) -> float | int:
    """A range's bound; YAML reads ``1e-4`` (no dot) as text, so text that is a number is one."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HyenaDNAError(f"search space {name}: {key} must be a finite number, got {value!r}")
    return value


def dimension(name: str, spec: object) -> Dimension:
    """The dimension ``name: spec`` of a search-space file."""
    if isinstance(spec, dict) and "choices" in spec:
        if set(spec) != {"choices"}:
            raise HyenaDNAError(
                f"search space {name}: choices take no other keys, got {sorted(set(spec) - {'choices'})}"
            )
        spec = spec["choices"]
    if isinstance(spec, list):
        if not spec:
            raise HyenaDNAError(f"search space {name}: no choices")
        plain = [v for v in spec if _plain(v) or (isinstance(v, list) and all(map(_plain, v)))]
        if len(plain) != len(spec):
            raise HyenaDNAError(
                f"search space {name}: choices must be numbers, text, true/false, null or lists of these, got {spec!r}"
            )
        choices = tuple(tuple(v) if isinstance(v, list) else v for v in spec)
        dim = Dimension(name, choices=choices)
        if len(set(map(repr, dim.labels))) != len(spec):  # a list and its JSON text are one choice to Optuna
            raise HyenaDNAError(f"search space {name}: a choice is repeated in {spec!r}")
        return dim
    if not isinstance(spec, dict):
        raise HyenaDNAError(f"search space {name}: give a list of choices or {{low, high}}, got {spec!r}")
    unknown = set(spec) - RANGE_KEYS
    if unknown or not {"low", "high"} <= set(spec):
        raise HyenaDNAError(
            f"search space {name}: a range takes low, high and optionally log and step, got {sorted(spec)}"
        )
    low, high = _number(name, "low", spec["low"]), _number(name, "high", spec["high"])
    step = None if spec.get("step") is None else _number(name, "step", spec["step"])
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise HyenaDNAError(f"search space {name}: log must be true or false, got {log!r}")
    if low >= high:
        raise HyenaDNAError(f"search space {name}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise HyenaDNAError(f"search space {name}: a log range needs low > 0, got {low}")
    if step is not None and (step <= 0 or log):
        raise HyenaDNAError(f"search space {name}: step must be positive and cannot go with log, got {step}")
    return Dimension(name, low=low, high=high, log=log, step=step)


def read_search_space(space: str | dict[str, Any] | None) -> list[Dimension]:
    """The dimensions of ``space``: a YAML file, the mapping itself, or None (:data:`DEFAULT_SPACE`)."""
    if space is None:
        space = DEFAULT_SPACE
    if isinstance(space, str):
        import yaml

        path = Path(space).expanduser()
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise HyenaDNAError(f"cannot read the search space {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise HyenaDNAError(f"the search space {path} is not valid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(loaded, dict) or not loaded:
            raise HyenaDNAError(f"the search space {path} must be a mapping of options to values, got {loaded!r}")
        space = loaded
    return [dimension(str(name), spec) for name, spec in space.items()]


def with_params(recipe: Any, params: dict[str, Any]) -> Any:
    """``recipe`` (a dataclass of option groups) with each ``group.field`` in ``params`` set; the
    changed groups are rebuilt, so their own checks run and refuse a bad value, naming it."""
    changes: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        group, _, field = name.partition(".")
        options = getattr(recipe, group, None) if group in {f.name for f in dataclasses.fields(recipe)} else None
        if not dataclasses.is_dataclass(options):
            groups = ", ".join(f.name for f in dataclasses.fields(recipe))
            raise HyenaDNAError(f"search space {name}: no option group {group!r} (one of {groups})")
        field, _, entry = field.partition(".")
        known = {f.name for f in dataclasses.fields(options)}
        if field not in known or (entry and f"{group}.{field}" not in FREE_FORM):
            raise HyenaDNAError(f"search space {name}: {group} has no option {field}{'.' + entry if entry else ''}")
        update = changes.setdefault(group, {})
        if entry:
            value = {**getattr(options, field), **update.get(field, {}), entry: value}
        update[field] = value
    return dataclasses.replace(recipe, **{g: dataclasses.replace(getattr(recipe, g), **c) for g, c in changes.items()})


def check_space(recipe: Any, dimensions: list[Dimension], enqueued: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Refuse a space naming an option the recipe lacks, one a search may not vary
    (:data:`FIXED`) or a value its option refuses, and ``enqueued`` trials naming an option
    outside the space or a value it cannot give. Returns the enqueued trials with YAML's text
    numbers (``1e-3``) read as numbers."""
    if len({d.name for d in dimensions}) != len(dimensions):
        raise HyenaDNAError("search space: an option is named twice")
    for dim in dimensions:
        fixed = next((name for name in FIXED if dim.name == name or dim.name.startswith(name + ".")), None)
        if fixed:
            raise HyenaDNAError(
                f"search space {dim.name}: {fixed} is not searched (it sets the task or how trials run)"
            )
        for value in dim.extremes():
            _check_value(recipe, dim.name, value)
    by_name = {d.name: d for d in dimensions}
    points = []
    for params in enqueued:
        if not isinstance(params, dict):
            raise HyenaDNAError(f"--search.enqueue takes mappings of options to values, got {params!r}")
        point = {}
        for name, value in params.items():
            if name not in by_name:
                raise HyenaDNAError(f"--search.enqueue names {name}, which the search space does not vary")
            dim = by_name[name]
            if isinstance(value, str) and not dim.choices:
                with contextlib.suppress(ValueError):
                    value = int(value) if dim.integer else float(value)
            if not dim.allows(value):
                raise HyenaDNAError(f"--search.enqueue: {name} = {value!r} lies outside the search space")
            _check_value(recipe, name, value)
            point[name] = value
        points.append(point)
    return points


def _check_value(recipe: Any, name: str, value: object) -> None:
    try:
        changed = with_params(recipe, {name: value})
        if name.startswith("head.") and dataclasses.is_dataclass(getattr(changed, "head", None)):
            _check_head(changed)
    except (HyenaDNAError, TypeError, ValueError) as exc:
        message = str(exc)
        prefix = "" if message.startswith(f"search space {name}") else f"search space {name}: "
        raise HyenaDNAError(f"{prefix}{message} (value {value!r})") from None


def _check_head(recipe: Any) -> None:
    """The head kind's own refusals (the likelihood head takes no hidden layer) and the CNN's (it
    has its own dense head), before the first trial rather than in every trial."""
    from hyenadna.data.labels import TASKS
    from hyenadna.heads.cnn import check_cnn_head
    from hyenadna.heads.config import HeadConfig
    from hyenadna.training.options import CNN_NAME

    task = getattr(getattr(recipe, "data", None), "task", None)
    options = dataclasses.asdict(recipe.head)
    # labels and a training length stand in for what the data decides; the kind's check runs as it is built
    head = HeadConfig(task=task if task in TASKS else "multiclass", labels=["a", "b"], train_length=1, **options)
    if getattr(getattr(recipe, "model", None), "name_or_path", None) == CNN_NAME:
        check_cnn_head(head)

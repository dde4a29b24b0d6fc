"""The ``finetune`` command: a task head trained on labelled sequences, tested, and saved.

Metrics are computed on whole splits from collected predictions (never averaged over batches).
The best checkpoint by the validation metric is restored before testing, and the fine-tuned
model is saved self-contained (backbone, head, task and labels) to ``output/model``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from hyenadna.analysis.metrics import task_metrics
from hyenadna.checks import values as validate
from hyenadna.data.datamodules import LabelledDataModule
from hyenadna.data.labels import LabelledRecord
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.calibration import CALIBRATED_TASKS, check_classes
from hyenadna.heads.cnn import cnn_head
from hyenadna.heads.config import HeadOptions
from hyenadna.heads.loading import calibrate_on, predict_sequences
from hyenadna.heads.task_model import TaskModel
from hyenadna.io.atomic import atomic_write_text
from hyenadna.io.file_plan import check_run_folder
from hyenadna.io.prediction_table import prediction_table
from hyenadna.training.optim import OptimOptions
from hyenadna.training.options import CNN_NAME, FinetuneOptions, LabelledData, ModelOptions, TrainerOptions
from hyenadna.training.plateau import plateau_decay
from hyenadna.training.prepare import initial_model, labelled_data_module, new_task_model
from hyenadna.training.runtime import runtime_facts
from hyenadna.training.task_module import SequenceTaskModule, early_stopping, validation_monitor
from hyenadna.training.throughput import StepTimer
from hyenadna.training.trainer import build_trainer, start_run_folder, stopped_as_interrupt, timed_fit

FINETUNE_OPTIM = OptimOptions(lr=1e-3, weight_decay=0.01, warmup_steps=20)


def run_finetune(
    data: LabelledData,
    model: ModelOptions = ModelOptions(),  # noqa: B008 (frozen-in defaults, shown by --print_config; never mutated)
    head: HeadOptions = HeadOptions(),  # noqa: B008
    tuning: FinetuneOptions = FinetuneOptions(),  # noqa: B008
    optim: OptimOptions = FINETUNE_OPTIM,
    trainer: TrainerOptions = TrainerOptions(),  # noqa: B008
    output: str = "runs/finetune",
    resume: bool | str = False,
    overwrite: bool = False,
    seed: int = 0,
) -> dict:
    """Fine-tune a model on labelled sequences; test metrics go to output/metrics.json.

    Tests the best checkpoint and saves the fine-tuned model; returns the metrics.

    Args:
        data: labelled files and how to read and batch them.
        model: the backbone: a model folder (ours or a released HyenaDNA checkpoint), a preset,
            or ``cnn`` for the convolutional baseline (``overrides`` then set its shape).
        head: the task head: its kind (pooled linear, class likelihoods, positional or conv), pooling,
            layer and reverse-complement conjoining.
        tuning: frozen or full fine-tuning, early stopping, the k-mer and CNN baselines.
        optim: AdamW and schedule (the head's learning rate; the backbone's is scaled).
        trainer: steps, devices, precision, validation interval.
        output: run folder: checkpoints/, logs/, model/ (self-contained fine-tuned model), metrics.json
            (and cnn_baseline/, the CNN's own run folder, when it is trained).
        resume: continue from output/checkpoints/last.ckpt.
        overwrite: replace an earlier run in output (a non-empty output needs resume or overwrite).
        seed: seed for initialisation, the validation split and shuffling, 0 to 2**32-1.
    """
    out = refuse_bad_inputs(data, model, output, overwrite, seed)
    return finetune(FinetuneRecipe(data, model, head, tuning, optim, trainer), out, seed, resume, overwrite)


@dataclass
class FinetuneRecipe:
    """The option groups of one fine-tune, as :func:`run_finetune` takes them: what a recipe
    YAML holds besides ``output`` and ``seed`` (``hyenadna tune`` varies them)."""

    data: LabelledData
    model: ModelOptions
    head: HeadOptions
    tuning: FinetuneOptions
    optim: OptimOptions
    trainer: TrainerOptions


def finetune(
    recipe: FinetuneRecipe,
    out: Path,
    seed: int,
    resume: bool | str = False,
    overwrite: bool = False,
    callbacks: tuple = (),
    evaluate: bool = True,
    fold: tuple[int, int] | None = None,
    **trainer_extra: Any,
) -> dict:
    """One fine-tune of ``recipe`` into the run folder ``out`` (checked by the caller), with
    extra Lightning ``callbacks`` and Trainer arguments (``max_time``...). ``evaluate``: test the
    best checkpoint, fit the baselines, save the model and the test report; without it (a
    tuning trial) the test split is never evaluated and only the validation result is returned.
    ``fold = (k, K)`` trains and validates on the k-th cross-validation fold of the training and
    validation records (a tuning trial's; never with ``evaluate``)."""
    if fold is not None and evaluate:
        raise HyenaDNAError("a cross-validation fold is for tuning trials, which are not tested")
    data, head, tuning, optim = recipe.data, recipe.head, recipe.tuning, recipe.optim
    if recipe.model.deepen_to is not None and tuning.freeze_backbone:
        raise HyenaDNAError(
            "--model.deepen_to with --tuning.freeze_backbone true: the new blocks would stay frozen as the "
            "identity; unfreeze the backbone or leave deepen_to unset"
        )
    L.seed_everything(seed, workers=True, verbose=False)
    is_cnn = recipe.model.name_or_path == CNN_NAME
    backbone = None if is_cnn else initial_model(recipe.model, seed)
    datamodule = labelled_data_module(data, seed, backbone.config.l_max if backbone else None, fold)
    task_model = new_task_model(backbone, head, datamodule, data.max_length, cnn_shape=recipe.model.overrides)
    task_model.start_from_targets(datamodule.targets("train"))  # e.g. the likelihood head's class priors
    lr_scale = 1.0 if is_cnn else tuning.backbone_lr_scale  # the CNN has one learning rate
    module = SequenceTaskModule(task_model, optim, tuning.freeze_backbone, lr_scale)
    splits = datamodule.split_sizes()
    if tuning.calibrate and evaluate:
        check_calibration(datamodule)
    monitor = validation_monitor(tuning, datamodule.vocab.task, "val" in splits)
    timer = StepTimer()
    stopping = [*early_stopping(monitor, tuning.patience), *plateau_decay(monitor, optim)]
    lightning_trainer = build_trainer(recipe.trainer, out, [timer, *stopping, *callbacks], optim.grad_clip,
                                      monitor=monitor, **trainer_extra)  # fmt: skip
    start_run_folder(out, resume, overwrite, vars(recipe) | {"output": str(out), "seed": seed}, module)
    seconds = timed_fit(lightning_trainer, module, datamodule, out, resume)
    result: dict[str, Any] = {"task": datamodule.vocab.task, "labels": datamodule.vocab.names,
                              "train_seconds": seconds, "steps": lightning_trainer.global_step,
                              "parameters": sum(p.numel() for p in task_model.parameters()),
                              "throughput": timer.summary(), "validation": best_validation(lightning_trainer, monitor),
                              "split_sizes": splits, "runtime": runtime_facts(lightning_trainer)}  # fmt: skip
    if evaluate:
        restore_best(module, out, monitor)
        result |= test_model(recipe, out, seed, lightning_trainer, module, datamodule)
        if lightning_trainer.is_global_zero:
            test_values = None
            if tuning.calibrate:
                report, test_values = calibration_or_error(task_model, datamodule, data.batch_size)
                result |= report
            save_run(out, task_model, datamodule, data.batch_size, result, test_values)
    return result


def test_model(recipe: FinetuneRecipe, out: Path, seed: int, lightning_trainer, module: SequenceTaskModule,
               datamodule: LabelledDataModule) -> dict[str, Any]:  # fmt: skip
    """The test metrics of the restored best model, and of the baselines the recipe asks for
    (none without a test split)."""
    if "test" not in datamodule.split_sizes():
        return {}
    tuning = recipe.tuning
    stopped_as_interrupt(lightning_trainer.test, module, datamodule=datamodule, verbose=False, weights_only=True)
    result: dict[str, Any] = {"test": module.test_metrics}
    if tuning.baseline:
        result["kmer_baseline"] = kmer_baseline_on(datamodule, seed)
    if tuning.cnn_baseline and recipe.model.name_or_path != CNN_NAME:  # same data, optimiser, schedule, stopping
        tuned = replace(tuning, baseline=False, cnn_baseline=False, calibrate=False)  # its own test only
        cnn = replace(recipe, model=ModelOptions(CNN_NAME), head=cnn_head(recipe.head), tuning=tuned)
        result["cnn_baseline"] = finetune(cnn, out / "cnn_baseline", seed, overwrite=True)["test"]
    return result


def check_calibration(datamodule: LabelledDataModule, option: str = "--tuning.calibrate") -> None:
    """Refuse ``option`` before training (or before reading a finished run) where no
    calibration could be fitted: no classifier, no validation split, a class it lacks."""
    task = datamodule.vocab.task
    if task not in CALIBRATED_TASKS:
        raise HyenaDNAError(f"{option} is for classifiers (multiclass or multilabel), not a {task} task")
    if "val" not in datamodule.split_sizes():
        raise HyenaDNAError(f"{option} needs a validation split to fit on (data.val, a split column "
                            "or data.val_fraction)")  # fmt: skip
    try:
        check_classes(task, list(datamodule.vocab.names), datamodule.targets("val"))
    except HyenaDNAError as exc:
        raise HyenaDNAError(f"{option}: {exc}") from None


def calibration_or_error(
    model: TaskModel, datamodule: LabelledDataModule, batch_size: int
) -> tuple[dict[str, Any], np.ndarray | None]:
    """:func:`calibration_report`, or, where the fit is refused (logits that rank a label the
    wrong way round on validation), the reason under ``calibration.error`` (and no test
    predictions): the trained model is saved uncalibrated rather than lost."""
    try:
        return calibration_report(model, datamodule, batch_size)
    except HyenaDNAError as exc:
        model.calibration = None
        warnings.warn(f"the model is saved uncalibrated: {exc}", stacklevel=2)
        return {"calibration": {"error": str(exc)}}, None


def calibration_report(
    model: TaskModel, datamodule: LabelledDataModule, batch_size: int
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Calibrate ``model`` on the validation split (it keeps the calibration). Returns the fit
    and the test metrics of the calibrated probabilities (``test_calibrated``), and those
    probabilities, one row per test sequence (``None`` without a test split), for the test
    report to write rather than predict again."""
    val = [r.sequence for r in datamodule.records("val")], datamodule.targets("val")
    fitted = asdict(calibrate_on(model, *val, batch_size))
    report: dict[str, Any] = {"calibration": {"method": model.calibration.method, **fitted}}
    probs = None
    if "test" in datamodule.split_sizes():
        test = [r.sequence for r in datamodule.records("test")], datamodule.targets("test")
        probs = predict_sequences(model, test[0], batch_size)
        report["test_calibrated"] = task_metrics(datamodule.vocab.task, probs, test[1])
    return report, probs


def save_run(
    out: Path,
    task_model: TaskModel,
    datamodule: LabelledDataModule,
    batch_size: int,
    result: dict,
    test_values: np.ndarray | None = None,
) -> None:
    """The fine-tuned model in ``out/model``, the test report (adding its paths to ``result``;
    ``test_values``: the model's test predictions where they were already made) and
    ``out/metrics.json``."""
    task_model.save_pretrained(out / "model")
    if "test" in result:
        test = datamodule.records("test"), datamodule.targets("test")
        result["report"] = write_test_report(out, task_model.to("cpu"), *test, batch_size, test_values)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")


def best_validation(lightning_trainer, monitor: tuple[str, str] | None) -> dict[str, float]:
    """The best value of ``monitor`` over the run's validation checks (``{}`` when it had none)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    for callback in lightning_trainer.callbacks:
        named = monitor and isinstance(callback, ModelCheckpoint) and callback.monitor == monitor[0]
        if named and callback.best_model_score is not None:
            return {monitor[0]: float(callback.best_model_score)}
    return {}


def refuse_bad_inputs(
    data: LabelledData, model: ModelOptions, output: str, overwrite: bool, seed: int, command: str = "finetune"
) -> Path:
    """The run folder of ``command``, once the seed, the training data and the folder's state
    are checked."""
    validate.integer("--seed", seed, 0, 2**32 - 1)  # the range seed_everything takes
    if not data.train:
        raise HyenaDNAError("fine-tuning needs labelled training data (data.train)")
    files = {"--data.train": data.train, "--data.val": data.val, "--data.test": data.test,
             "--data.reader.genome": data.reader.get("genome")}  # fmt: skip
    check_run_folder(command, Path(output), model.name_or_path, files, overwrite)
    return Path(output)


def restore_best(module: SequenceTaskModule, out: Path, monitor: tuple[str, str] | None) -> None:
    """The weights of the best checkpoint by ``monitor``, where the run wrote one."""
    best = out / "checkpoints" / "best.ckpt"
    if monitor and best.is_file():
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])


def kmer_baseline_on(datamodule: LabelledDataModule, seed: int) -> dict:
    """The k-mer logistic-regression baseline fitted on the same splits (its C chosen on val)."""
    from hyenadna.analysis.kmer_baseline import kmer_baseline

    def split(name: str) -> tuple[list[str], np.ndarray]:
        return [r.sequence for r in datamodule.records(name)], datamodule.targets(name)

    val = split("val") if "val" in datamodule.split_sizes() else None
    return kmer_baseline(datamodule.vocab.task, *split("train"), *split("test"), seed=seed, val=val)


def write_test_report(
    out: Path,
    model: TaskModel,
    records: list[LabelledRecord],
    targets: np.ndarray,
    batch_size: int,
    values: np.ndarray | None = None,
) -> dict[str, Any]:
    """Beside ``metrics.json``: ``test_predictions.tsv`` (every test sequence's predictions:
    ``values`` where the caller has them, else predicted here) and, with the plot extra
    installed, ``plots/`` (ROC, precision-recall, confusion matrix for classifiers, and the
    training curves). Returns what was written."""
    from hyenadna.analysis import plotting

    if values is None:
        values = predict_sequences(model, [r.sequence for r in records], batch_size)
    elif len(values) != len(records):
        raise ValueError(f"{len(values)} test predictions for {len(records)} test sequences")
    config = model.head_config
    table = prediction_table(config, [r.name for r in records], values, [r.label for r in records])
    atomic_write_text(out / "test_predictions.tsv", table)
    report: dict[str, Any] = {"test_predictions": str(out / "test_predictions.tsv")}
    if not plotting.plotting_available():
        report["plots"] = "not drawn: pip install 'hyenadna[plot]'"
        return report
    written = []
    if config.task == "multiclass":
        written += plotting.classification_curves(values, targets, config.labels, out / "plots")
    logs = sorted((out / "logs" / "csv").glob("version_*/metrics.csv"))
    if logs:
        written.append(plotting.training_curves(logs[-1], out / "plots" / "training.png"))
    report["plots"] = [str(p) for p in written]
    return report

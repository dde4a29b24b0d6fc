"""``hyenadna calibrate``: a finished fine-tuning run calibrated on its own validation split.

What ``--tuning.calibrate`` does at the end of ``hyenadna finetune``, for a run that was trained
without it: the run's data are read again from its ``config.yaml`` (the same files, split and
seed), a scale and per-class biases are fitted on the validation split's logits
(:mod:`hyenadna.heads.calibration`), and the run folder is brought up to date as a whole:
``model/calibration.json``, ``metrics.json`` (``calibration`` and ``test_calibrated`` beside the
model's own ``test``) and ``test_predictions.tsv`` (the calibrated probabilities). Each file is
replaced only when complete, ``calibration.json`` last; the weights are not touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hyenadna.errors import HyenaDNAError
from hyenadna.heads.calibration import CALIBRATION_FILE
from hyenadna.heads.cnn import ConvClassifier
from hyenadna.heads.loading import load_task_model
from hyenadna.io.atomic import atomic_write_text
from hyenadna.io.checkpoint import read_json_object
from hyenadna.pipelines.finetune import calibration_report, check_calibration, write_test_report
from hyenadna.training.options import LabelledData
from hyenadna.training.prepare import labelled_data_module
from hyenadna.training.trainer import resolve_device


def run_calibrate(run: str, overwrite: bool = False, device: str = "auto") -> dict:
    """Calibrate a fine-tuned model's probabilities on its run's validation split.

    Args:
        run: a finished ``hyenadna finetune`` run folder (its ``config.yaml``, ``metrics.json``
            and ``model/``); its data files must still be where the run read them.
        overwrite: fit again where the run was calibrated before (its ``calibration.json``
            is set aside unread).
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
    """
    folder = Path(run)
    metrics_file, model_folder = folder / "metrics.json", folder / "model"
    if not metrics_file.is_file() or not model_folder.is_dir():
        raise HyenaDNAError(f"{run}: not a finished fine-tuning run (it needs metrics.json and model/)")
    metrics = read_json_object(metrics_file, "metrics file")
    earlier = model_folder / CALIBRATION_FILE
    if earlier.is_file() and not overwrite:
        raise HyenaDNAError(f"{run}: already calibrated ({earlier}); --overwrite fits it again")
    data, seed = run_data(folder)
    model = load_task_model(model_folder, map_location=resolve_device(device), calibrated=False).eval()
    l_max = None if isinstance(model, ConvClassifier) else model.backbone.config.l_max  # as finetune cut them
    datamodule = labelled_data_module(data, seed, l_max)
    if list(datamodule.vocab.names) != list(model.head_config.labels):
        raise HyenaDNAError(f"{run}: the data's labels {list(datamodule.vocab.names)} are not the model's "
                            f"{model.head_config.labels}; were the data files changed?")  # fmt: skip
    check_calibration(datamodule, "hyenadna calibrate")
    report, test_values = calibration_report(model, datamodule, data.batch_size)
    if test_values is not None:
        test = datamodule.records("test"), datamodule.targets("test")
        metrics["report"] = write_test_report(folder, model.to("cpu"), *test, data.batch_size, test_values)
    atomic_write_text(metrics_file, json.dumps(metrics | report, indent=2) + "\n")
    model.save_calibration(model_folder)  # last: a run stopped before it is calibrated again, not refused
    return {"run": str(run), **report}


def run_data(folder: Path) -> tuple[LabelledData, int]:
    """The data options and the seed a run folder's ``config.yaml`` records."""
    config_file = folder / "config.yaml"
    try:
        config = yaml.safe_load(config_file.read_text())
        return LabelledData(**config["data"]), int(config["seed"])
    except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError) as exc:
        raise HyenaDNAError(f"{config_file}: not the configuration of a fine-tuning run ({exc})") from None

"""Helpers shared by the training pipelines: the Lightning Trainer, loggers, checkpoints, resuming."""

from __future__ import annotations

import logging
import re
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write, launched_as_rank_zero, prepare_run_folder, write_run_config
from hyenadna.training.options import TrainerOptions


class _NoTips(logging.Filter):
    """Drops Lightning's advertising ("Tip: ... try installing ...") from its info log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoTips())


def atomic_checkpoint_io():
    """Lightning's checkpoint writer, writing each checkpoint to a temporary name and renaming it
    when whole: a full disk or a kill never leaves a truncated ``stepN.ckpt`` or ``last.ckpt``
    under its final name (Lightning's own writes the final file directly). A failed write
    stops the run with the file and the reason named."""
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
            try:
                atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
            except OSError as exc:
                raise HyenaDNAError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc

    return AtomicCheckpointIO()


def resolve_device(device: str) -> str:
    """``auto``: CUDA when torch sees a GPU, else the CPU; any other value as given, once
    checked to exist on this machine (``--device cuda`` without CUDA is one line, not a
    ``pin_memory`` traceback mid-run)."""
    from hyenadna.checks.devices import check_device

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device)
    return device


def runs_on_cpu(accelerator: str) -> bool:
    """Whether Lightning runs an ``accelerator`` on the CPU here: ``cpu``, or ``auto`` with
    neither CUDA nor Apple's MPS."""
    if accelerator == "cpu":
        return True
    mps = getattr(torch.backends, "mps", None)
    return accelerator == "auto" and not torch.cuda.is_available() and not (mps and mps.is_available())


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto``: bf16-mixed on GPUs that support it, else 32-true; any other value as given,
    with a warning where bf16-mixed would run on a CPU without AMX (emulated bfloat16 products
    are slower than float32's, :mod:`hyenadna.ops.precision`)."""
    from hyenadna.training.runtime import cpu_has_amx

    if precision != "auto":
        if precision.startswith("bf16") and runs_on_cpu(accelerator) and cpu_has_amx() is False:
            warnings.warn(
                f"precision {precision!r} on a CPU without AMX: its bfloat16 products are emulated and "
                "likely slower than 32-true's",
                RuntimeWarning,
                stacklevel=2,
            )
        return precision
    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


def build_trainer(
    options: TrainerOptions,
    output: Path,
    callbacks: list,
    gradient_clip: float = 0.0,
    monitor: tuple[str, str] | None = None,
    **extra: Any,
):
    """A Lightning Trainer logging to ``output/logs/{csv,tensorboard}/version_N`` and checkpointing
    under ``output/checkpoints`` (every N steps, ``last.ckpt``, and the best by ``monitor``)."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    checkpoints = output / "checkpoints"
    callbacks = list(callbacks)
    callbacks.append(
        ModelCheckpoint(
            dirpath=checkpoints,
            filename="step{step}",
            auto_insert_metric_name=False,
            every_n_train_steps=options.checkpoint_every_n_steps or None,
            save_top_k=-1,
            save_last=True,
        )
    )
    if monitor is not None:
        callbacks.append(
            ModelCheckpoint(
                dirpath=checkpoints,
                filename="best",
                monitor=monitor[0],
                mode=monitor[1],
                save_top_k=1,
                auto_insert_metric_name=False,
            )
        )
    callbacks.append(LearningRateMonitor(logging_interval="step"))
    # One version folder per launch (logs/version_0, version_1 after a resume...): a resumed
    # run must not overwrite the metrics of the run it continues.
    loggers = [CSVLogger(output / "logs", name="csv"), TensorBoardLogger(output / "logs", name="tensorboard")]
    val_kwargs: dict[str, Any] = {"check_val_every_n_epoch": 1}
    if options.val_every_n_steps:
        val_kwargs = {"val_check_interval": options.val_every_n_steps, "check_val_every_n_epoch": None}
    try:  # Lightning refuses settings it cannot use (--trainer.precision bogus) with a plain ValueError
        return L.Trainer(
            max_steps=options.max_steps,
            max_epochs=options.max_epochs,
            accelerator=options.accelerator,
            devices=options.devices,
            strategy=options.strategy,
            num_nodes=options.num_nodes,
            precision=resolve_precision(options.precision, options.accelerator),
            accumulate_grad_batches=options.accumulate_grad_batches,
            gradient_clip_val=gradient_clip or None,
            limit_val_batches=options.limit_val_batches,
            log_every_n_steps=options.log_every_n_steps,
            enable_progress_bar=options.progress_bar,
            deterministic=options.deterministic,
            default_root_dir=output,
            enable_model_summary=False,  # its FLOPs column reads 0 for our operators; the summary counts parameters
            callbacks=callbacks,
            logger=loggers,
            plugins=[atomic_checkpoint_io()],
            **val_kwargs,
            **extra,
        )
    except (ValueError, MisconfigurationException) as exc:
        raise HyenaDNAError(f"--trainer options: {' '.join(str(exc).split()) or type(exc).__name__}") from None


def resume_checkpoint(output: Path, resume: bool | str) -> str | None:
    """``True``: the run's ``last.ckpt`` (which must exist); a path: that file; ``False``: None.
    The file must be a whole checkpoint that loads with ``weights_only=True`` (checked here, so a
    refusal is one error naming it)."""
    found = _verified_checkpoint(output, resume)
    return None if found is None else found[0]


def _verified_checkpoint(output: Path, resume: bool | str) -> tuple[str, dict] | None:
    """:func:`resume_checkpoint`'s path and the checkpoint itself (memory mapped), or None."""
    if not resume:
        return None
    # Our training loader restarts mid-epoch where the checkpoint stopped (see
    # PretrainDataModule.train_dataloader), which Lightning cannot see; its warning is wrong here.
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
    path = output / "checkpoints" / "last.ckpt" if resume is True else Path(resume)
    if not path.is_file():
        raise HyenaDNAError(f"cannot resume: no checkpoint at {path}")
    try:  # torch checkpoints are zip archives: a torn one has no central directory
        with zipfile.ZipFile(path) as archive:
            archive.getinfo(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    except (zipfile.BadZipFile, StopIteration, OSError) as exc:
        raise HyenaDNAError(
            f"cannot resume: {path} is not a complete checkpoint ({type(exc).__name__}); resume from another one "
            "(--resume PATH, see checkpoints/) or start again with --overwrite"
        ) from None
    return str(path), _check_loads_safely(path)


def _check_loads_safely(path: Path) -> dict:
    """Load ``path`` as Lightning will (``weights_only=True``: nothing in it can run code), memory
    mapped so no weight is read, so that a checkpoint naming any other global (a pickle that
    would call ``os.system``) is one error naming the file, not a traceback from inside the fit.
    torch's advice in its refusal (allow the global, or load with ``weights_only=False``) is not
    relayed: it would tell the user how to run the code. Returns the checkpoint."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            reason = (
                f"was refused because it holds {found.group(1)}, which a checkpoint of ours never holds "
                "(a pickle that could run code)"
            )
        else:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            plain = isinstance(exc, pickle.UnpicklingError) or not lines or "weights_only" in lines[0]
            reason = f"cannot be read ({type(exc).__name__ if plain else lines[0]})"
        raise HyenaDNAError(
            f"cannot resume: {path} {reason}; resume from another checkpoint (--resume PATH) or start again "
            "with --overwrite"
        ) from None


def start_run_folder(
    output: Path, resume: bool | str, overwrite: bool, options: dict[str, Any], module: torch.nn.Module | None = None
) -> None:
    """Make the run folder ready and write the options that ran into it (``config.yaml``), in
    the launching process only; called once the options, the inputs, the Trainer and, when
    resuming a training run, the checkpoint's fit to its ``module`` have passed, so that a
    refused run leaves its folder as it was."""
    if launched_as_rank_zero():
        if module is not None:
            check_resume_fits(module, output, resume)
        prepare_run_folder(output, resume, overwrite)
        write_run_config(output, options)


def check_resume_fits(module: torch.nn.Module, output: Path, resume: bool | str) -> None:
    """The checkpoint a run resumes from must hold the model its options build: resumed with
    other model options (another ``deepen_to`` or ``overrides``), Lightning would fail inside
    the fit with a list of missing keys, after ``config.yaml`` had been rewritten with options
    that never trained."""
    found = _verified_checkpoint(output, resume)
    if found is None:
        return
    path, checkpoint = found
    saved = checkpoint.get("state_dict", {})
    built = module.state_dict()
    differ = sorted(set(saved) ^ set(built)) or [k for k in built if saved[k].shape != built[k].shape]
    if differ:
        raise HyenaDNAError(
            f"cannot resume: {path} holds another model than the options build (first difference: {differ[0]}); "
            "resume with the run's own model options (its config.yaml: --model.name_or_path, --model.overrides, "
            "--model.deepen_to) or start again with --overwrite"
        )


def timed_fit(trainer, module, datamodule, output: Path, resume: bool | str) -> float:
    """Train ``module`` (from the checkpoint ``resume`` names, if any); returns the seconds taken."""
    start = time.perf_counter()
    stopped_as_interrupt(trainer.fit, module, datamodule=datamodule, ckpt_path=resume_checkpoint(output, resume),
                         weights_only=True)  # fmt: skip
    return time.perf_counter() - start


def stopped_as_interrupt(call, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` (a Trainer's ``fit`` or ``test``), with Lightning's exits on a
    stop turned back into the interrupt they came from.

    Lightning answers Ctrl-C by ``sys.exit(1)`` and SIGTERM by raising ``SIGTERMException``, a
    ``SystemExit`` without a code: the process ended with status 1, or 0 as if the run had
    finished, and a tuning study never heard of it. Both become the ``KeyboardInterrupt`` the
    command line reports as stopped (status 130) and a study records as a failed trial."""
    try:
        return call(*args, **kwargs)
    except SystemExit as exc:
        if type(exc).__name__ == "SIGTERMException":
            raise KeyboardInterrupt("signal 15") from None
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt(*exc.__context__.args) from None
        raise

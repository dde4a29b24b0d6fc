"""The Optuna study of a tuning run: its storage, sampler and pruner, opened or refused.

The study is the search's memory: every trial's options, validation curve and state. It lives
in SQLite inside the run folder by default, or in any database SQLAlchemy reaches (PostgreSQL,
MySQL), so that a stopped search resumes and several processes or machines share one.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path

from hyenadna.errors import HyenaDNAError
from hyenadna.training.options import SearchOptions


def default_storage(out: Path) -> str:
    """``sqlite:///OUT/study.db``; refused where the path holds a character a URL reads as
    syntax (``?`` starts a query, ``#`` a fragment, ``%`` an escape): the database would be
    written somewhere else."""
    path = str((out / "study.db").resolve())
    odd = sorted({c for c in path if c in "?#%"})
    if odd:
        raise HyenaDNAError(
            f"--output {out} holds {' '.join(odd)}, which an SQLite URL cannot carry; choose another --output "
            "or give the study a --search.storage"
        )
    return f"sqlite:///{path}"


def short(exc: BaseException) -> str:
    """An exception as one line of at most 300 characters."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def hide_password(url: str) -> str:
    """``url`` without the password an RDB URL may carry (summaries and errors are shared)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: nothing to hide in it, and check_storage refuses it
        return url


def check_storage(url: str) -> None:
    """Refuse a storage URL SQLAlchemy cannot read or has no driver for, before anything is
    written (no connection is made)."""
    import sqlalchemy

    try:
        sqlalchemy.create_engine(url).dispose()
    except Exception as exc:  # ArgumentError, NoSuchModuleError, ImportError of a missing driver
        raise HyenaDNAError(f"cannot open the study storage {hide_password(url)}: {short(exc)}") from None


def open_study(search: SearchOptions, url: str, direction: str, seed: int, resume: bool, overwrite: bool):
    """The study ``search.study_name`` in ``url``: created; continued with ``resume`` (or
    joined, as another process's); replaced with ``overwrite``; else refused if it exists, so
    that no run adds its trials to another's unasked, or resumed with another ``search.folds``
    (whose scores would not compare). Trials of a process that died are failed after a missed
    heartbeat and tried once more with the same options."""
    import optuna

    storage = rdb_storage(url)
    exists = search.study_name in optuna.study.get_all_study_names(storage=storage)
    if exists and not resume:
        if not overwrite:
            raise HyenaDNAError(
                f"the study {search.study_name} already exists in {hide_password(url)}; pass --resume to continue it "
                "(or to join it from another process), --overwrite to replace it, or choose another --search.study_name"
            )
        optuna.delete_study(study_name=search.study_name, storage=storage)
    goal = "maximize" if direction == "max" else "minimize"
    study = optuna.create_study(storage=storage, study_name=search.study_name, direction=goal,
                                pruner=pruner_for(search), load_if_exists=True)  # fmt: skip
    if study.direction.name.lower() != goal:
        made = study.direction.name.lower()
        raise HyenaDNAError(f"the study {search.study_name} in {hide_password(url)} was made to {made}, not to {goal}")
    judged = study.user_attrs.get("folds", 0 if study.trials else None)  # older studies: the validation split
    if judged is None:
        study.set_user_attr("folds", search.folds)
    elif judged != search.folds:  # scores of different data would be ranked together
        raise HyenaDNAError(
            f"the study {search.study_name} in {hide_password(url)} judges its trials with --search.folds {judged}, "
            f"not {search.folds}; continue it with {judged}, or start another (--overwrite, --search.study_name)"
        )
    running = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING])
    study.sampler = sampler_for(search, seed, joined=bool(running), drawn=len(study.trials))
    if not study.trials:  # a new study: the trials asked for first
        for params in search.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
    return study


def rdb_storage(url: str):
    """Optuna's database storage at ``url``, with a heartbeat every minute (a trial silent for
    three is failed and tried again once)."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # the heartbeat is marked experimental, and is what resuming needs
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return RDBStorage(url, heartbeat_interval=60, grace_period=180,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))  # fmt: skip
        except Exception as exc:  # SQLAlchemy's errors for an unreachable server or a foreign database
            raise HyenaDNAError(f"cannot open the study storage {hide_password(url)}: {short(exc)}") from None


def sampler_for(search: SearchOptions, seed: int, joined: bool, drawn: int = 0):
    """TPE (random trials first) or random sampling, seeded by ``seed``. A process joining a
    study that others are running mixes its host and process id into the seed, or it would
    draw the very trials they draw; a study resumed after ``drawn`` trials mixes in that count,
    or its random start would draw its first trials again (the same seed, the same sequence)."""
    import optuna

    if joined:
        seed = hash((seed, socket.gethostname(), os.getpid())) % 2**32
    elif drawn:
        import numpy as np

        seed = int(np.random.SeedSequence([seed, drawn]).generate_state(1)[0])
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=search.startup_trials)


def pruner_for(search: SearchOptions):
    """The pruner, judging trials by their validation checks (steps 1 to ``val_checks``)."""
    import optuna

    if search.pruner == "median":
        # never on the first check: models that learn a motif "click" late, and the first
        # check of a slow starter says little about its end
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials, n_warmup_steps=2)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=search.val_checks)
    return optuna.pruners.NopPruner()


class StopWhenAllStarted:
    """An Optuna callback: stop this process's search once the study's finished trials
    (complete or pruned) and those still running anywhere reach ``trials``. Counting finished
    trials alone, two processes finishing one after the other would each start one more while
    the other's last trial is still running: a trial too many, trained for nothing."""

    def __init__(self, trials: int) -> None:
        self.trials = trials

    def __call__(self, study, trial) -> None:
        if started_trials(study) >= self.trials:
            study.stop()


def started_trials(study) -> int:
    """Trials finished (complete or pruned) or running in any process: what counts toward
    ``search.trials`` (failed ones are tried again)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=[TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING]))


def wait_for_running(study, poll_seconds: float = 10.0, say=print) -> int:
    """Wait until no trial of ``study`` is running (in other processes sharing it), failing
    trials whose process has died (a missed heartbeat) as Optuna does at each trial's start;
    returns how many were running when it began. The best trial is then chosen from all."""
    import optuna
    from optuna.trial import TrialState

    def running() -> int:
        optuna.storages.fail_stale_trials(study)
        return len(study.get_trials(deepcopy=False, states=[TrialState.RUNNING]))

    first = running()
    if first:
        say(f"hyenadna tune: waiting for {first} trial(s) running in other processes sharing the study")
    while running():
        time.sleep(poll_seconds)
    return first

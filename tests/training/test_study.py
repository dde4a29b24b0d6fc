"""The study's storage: passwords kept out of what is shown, URLs refused before anything is
written, an existing study joined only when asked, joining processes and resumed studies drawing trials of their own."""

from __future__ import annotations

import threading
import time

import optuna
import pytest

from hyenadna.errors import HyenaDNAError
from hyenadna.pipelines.tune import search_until_done
from hyenadna.training.options import SearchOptions
from hyenadna.training.study import check_storage, default_storage, hide_password, open_study, wait_for_running


def test_a_storage_password_stays_out_of_what_is_shown():
    assert hide_password("postgresql://ana:s3cret@db.example.org:5432/studies") == (
        "postgresql://ana:***@db.example.org:5432/studies"
    )
    assert hide_password("sqlite:////runs/tune/study.db") == "sqlite:////runs/tune/study.db"


def test_storage_urls_are_checked_without_connecting(tmp_path):
    check_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert not (tmp_path / "study.db").exists()
    with pytest.raises(HyenaDNAError, match="cannot open the study storage nosuchdb://x"):
        check_storage("nosuchdb://x")
    assert default_storage(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    with pytest.raises(HyenaDNAError, match="holds # %, which an SQLite URL cannot carry"):
        default_storage(tmp_path / "a#b%20")


def test_a_study_is_continued_replaced_or_refused(tmp_path):
    url, search = f"sqlite:///{tmp_path / 'study.db'}", SearchOptions(enqueue=[{"optim.lr": 1e-3}])
    study = open_study(search, url, "max", 0, resume=False, overwrite=False)
    assert [t.params for t in study.trials] == [{}] and study.trials[0].system_attrs  # the queued point
    study.tell(study.ask(), 0.5)
    with pytest.raises(HyenaDNAError, match="already exists in .*study.db; pass --resume"):
        open_study(search, url, "max", 0, resume=False, overwrite=False)
    assert len(open_study(search, url, "max", 0, resume=True, overwrite=False).trials) == 1  # not queued again
    with pytest.raises(HyenaDNAError, match="was made to maximize, not to minimize"):
        open_study(search, url, "min", 0, resume=True, overwrite=False)
    assert open_study(search, url, "max", 0, resume=False, overwrite=True).trials[0].state.name == "WAITING"


def test_a_process_joining_a_running_study_draws_its_own_trials(tmp_path):
    url, search = f"sqlite:///{tmp_path / 'study.db'}", SearchOptions(sampler="random")
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    first = open_study(search, url, "max", 0, resume=False, overwrite=False)
    running = first.ask(space)
    joined = open_study(search, url, "max", 0, resume=True, overwrite=False)
    alone = open_study(search, f"sqlite:///{tmp_path / 'other.db'}", "max", 0, resume=False, overwrite=False)
    assert joined.ask(space).params != alone.ask(space).params == {"x": running.params["x"]}


def test_a_resumed_study_does_not_draw_its_first_trials_again(tmp_path):
    """Seeded alike at every launch, the random start would repeat itself after a resume: a
    stopped search would spend its next trials on points it has already scored."""
    url, search = f"sqlite:///{tmp_path / 'study.db'}", SearchOptions(sampler="random")
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    first = open_study(search, url, "max", 0, resume=False, overwrite=False)
    drawn = []
    for _ in range(2):
        trial = first.ask(space)
        first.tell(trial, 0.5)
        drawn.append(trial.params["x"])
    resumed = open_study(search, url, "max", 0, resume=True, overwrite=False)
    again = [resumed.ask(space).params["x"] for _ in range(2)]
    assert not set(again) & set(drawn)
    fresh = open_study(search, f"sqlite:///{tmp_path / 'b.db'}", "max", 0, resume=False, overwrite=False)
    assert [fresh.ask(space).params["x"] for _ in range(2)] == drawn  # a new study is as reproducible as before


def test_processes_sharing_a_study_start_no_trial_too_many_and_the_last_waits_for_the_others(tmp_path):
    """Another process's running trial counts toward search.trials, so this one stops at the
    target instead of starting one more; with search.final it then waits for that trial, so
    that the best of all is the one retrained."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    search = SearchOptions(trials=3, sampler="random")
    study = open_study(search, url, "max", 0, resume=False, overwrite=False)
    other = optuna.load_study(study_name=search.study_name, storage=url)
    elsewhere = other.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # running in "another process"
    ours = []

    def objective(trial):
        ours.append(trial.number)
        return 0.5

    threading.Timer(1.0, lambda: other.tell(elsewhere, 0.9)).start()  # it finishes while this one searches or waits
    search_until_done(study, objective, search)
    assert len(ours) == 2  # 2 of ours and 1 of theirs: 3; counting finished trials only, it ran 3
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(complete) == 3 and study.best_value == 0.9  # waited for the other's trial
    assert wait_for_running(study, poll_seconds=0.01, say=pytest.fail) == 0  # nothing running: no wait, no word


def test_waiting_fails_a_trial_whose_process_died_instead_of_waiting_for_ever(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage)
    dead = study.ask()
    storage.record_heartbeat(dead._trial_id)  # one beat, then silence
    said = []
    time.sleep(3)  # past the grace period of 1 s (SQLite keeps whole seconds)
    assert wait_for_running(study, poll_seconds=0.05, say=said.append) == 0  # failed at the first look
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    live = study.ask()  # a running trial with no heartbeat at all is waited for until it ends
    threading.Timer(0.5, lambda: study.tell(live, 1.0)).start()
    assert wait_for_running(study, poll_seconds=0.05, say=said.append) == 1
    assert said == ["hyenadna tune: waiting for 1 trial(s) running in other processes sharing the study"]
    assert study.trials[1].state == optuna.trial.TrialState.COMPLETE

"""The study's storage: passwords kept out of what is shown, URLs refused before anything is
written, an existing study joined only when asked, joining processes and resumed studies drawing trials of their own."""

from __future__ import annotations

import optuna
import pytest

from hyenadna.errors import HyenaDNAError
from hyenadna.training.options import SearchOptions
from hyenadna.training.study import check_storage, default_storage, hide_password, open_study


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

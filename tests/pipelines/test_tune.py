"""``hyenadna tune`` end to end on the bundled TF-binding peaks: a tiny search whose second trial
is pruned, a resumed study that keeps its trials and final runs, the best recipe written as a
plain fine-tune config, tested on several seeds; the test split untouched by the trials."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml

from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadOptions
from hyenadna.pipelines import trials as trials_module
from hyenadna.pipelines.tune import check_conv_depth, chosen_trial, confirmed_scores, run_tune
from hyenadna.training.optim import OptimOptions
from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, SearchOptions, TrainerOptions
from hyenadna.training.search_space import read_search_space

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "data" / "tf_binding"
DATA = LabelledData(train={"Oct4": str(TF / "oct4_train.fa"), "MafK": str(TF / "mafk_train.fa")},
                    test={"Oct4": str(TF / "oct4_test.fa"), "MafK": str(TF / "mafk_test.fa")},
                    val_fraction=0.05, batch_size=32)  # fmt: skip
MODEL = ModelOptions("tiny-1k", {"n_layer": 1, "d_model": 32})
GOOD, HOPELESS = 0.003, 1e-12
# 12 steps of 32 sequences of 200 bases, validated after steps 4, 8 and 12
SEARCH = dict(space={"optim.lr": [GOOD, HOPELESS]}, trial_tokens=76_800, val_checks=3, startup_trials=1,
              enqueue=[{"optim.lr": GOOD}, {"optim.lr": HOPELESS}], seeds=[0, 1], final_tokens=76_800)  # fmt: skip


def tune(out: Path, trials: int, search: dict | None = None, **kwargs) -> dict:
    options = SearchOptions(trials=trials, **(SEARCH | (search or {})))
    return run_tune(DATA, options, MODEL, tuning=FinetuneOptions(monitor="loss"),
                    optim=OptimOptions(lr=1e-3, warmup_steps=0),
                    trainer=TrainerOptions(accelerator="cpu", devices=1, progress_bar=False),
                    output=str(out), **kwargs)  # fmt: skip


def rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.slow
def test_a_tiny_search_prunes_resumes_and_retrains_the_best_on_seeds(tmp_path):
    out = tmp_path / "tune"
    summary = tune(out, trials=2)
    assert summary["study"]["trials"] == {"complete": 1, "pruned": 1}
    assert summary["monitor"] == "val/loss" and summary["best_trial"]["params"] == {"optim.lr": GOOD}
    table = rows(out / "trials.tsv")
    assert [(r["trial"], r["state"], r["optim.lr"]) for r in table] == [("0", "COMPLETE", str(GOOD)),
                                                                        ("1", "PRUNED", str(HOPELESS))]  # fmt: skip
    assert table[0]["steps"] == "12" and float(table[0]["value"]) == pytest.approx(summary["best_trial"]["value"])
    for trial in ("0000", "0001"):  # trials keep their logs and config, not their checkpoints, and never test
        folder = out / "trials" / trial
        assert (folder / "config.yaml").is_file() and not (folder / "checkpoints").exists()
        logged = (next((folder / "logs" / "csv").glob("version_*/metrics.csv"))).read_text().splitlines()[0]
        assert "val/loss" in logged and "test/" not in logged

    final = summary["final"]  # the best recipe, trained again on two seeds and tested once each
    assert final["seeds"] == [0, 1] and set(final["test"]) == {"accuracy", "mcc", "macro_f1", "auroc"}
    auroc = final["test"]["auroc"]
    assert len(auroc["values"]) == 2 and auroc["mean"] == pytest.approx(sum(auroc["values"]) / 2)
    assert "kmer_baseline" in final and auroc["mean"] > 0.6  # 12 steps of a tiny model: better than chance
    runs = Path(final["runs"])
    assert sorted(p.name for p in runs.iterdir()) == ["seed0", "seed1"]
    assert json.loads((runs / "seed1" / "metrics.json").read_text())["test"]["auroc"] == auroc["values"][1]
    recipe = yaml.safe_load((out / "best_recipe.yaml").read_text())
    assert recipe["optim"]["lr"] == GOOD and recipe["trainer"]["max_steps"] == 12 and recipe["seed"] == 0
    assert recipe["output"] == str(out / "best")  # a folder of its own: the final runs stay as they are
    saved = json.loads((out / "summary.json").read_text())
    assert saved["final"]["test"] == final["test"]

    # the recipe is a plain fine-tune config: the command reads it back as written
    shown = subprocess.run([sys.executable, str(REPO / "cli.py"), "finetune", "--config", str(out / "best_recipe.yaml"),
                            "--print_config"], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert yaml.safe_load(shown.stdout)["optim"]["lr"] == GOOD and not (out / "best").exists()

    with pytest.raises(HyenaDNAError, match="holds an earlier run .*pass --resume to continue it"):
        tune(out, trials=3)
    seed0 = (runs / "seed0" / "metrics.json").stat().st_mtime_ns
    # one more trial, the first two kept as they were; the leader confirmed on seed 1 before retraining
    resumed = tune(out, trials=3, search={"confirm": 1, "confirm_seeds": [1]}, resume=True)
    assert sum(resumed["study"]["trials"].values()) == 3
    confirmed = resumed["confirmation"]
    leader = resumed["best_trial"]["number"]
    assert confirmed["seeds"] == [0, 1] and leader in confirmed["trials"] and 0 in confirmed["trials"]  # 0: enqueued
    values = confirmed["trials"][leader]["values"]
    assert len(values) == 2 and values[0] == resumed["best_trial"]["value"] and values[1] != values[0]
    assert (out / "confirm" / f"{leader:04d}" / "seed1" / "validation.json").is_file()
    assert resumed["chosen_trial"] in confirmed["trials"]
    again = rows(out / "trials.tsv")
    assert again[:2] == table and again[2]["state"] in ("COMPLETE", "PRUNED")
    if resumed["chosen_trial"] == 0:  # the same trial retrained: its final runs are reused, not repeated
        assert (runs / "seed0" / "metrics.json").stat().st_mtime_ns == seed0
        assert resumed["final"]["test"] == final["test"]

    # the task suite adopts the search: the chosen recipe under the suite's name, pointed at the
    # suite's run folder, and the final runs' metrics as the suite's cache
    adopted = subprocess.run([sys.executable, str(REPO / "benchmarks" / "adopt_tune.py"), str(out), "--task",
                              "tf_oct4_mafk", "--method", "cnn-tuned", "--command", "hyenadna tune ...", "--runs",
                              str(tmp_path / "suite"), "--recipes", str(tmp_path / "tuned")],
                             capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert adopted.returncode == 0, adopted.stderr[-2000:]
    text = (tmp_path / "tuned" / "cnn_tf_oct4_mafk.yaml").read_text()
    chosen = resumed["chosen_trial"]
    assert f"(trial {chosen}, val/loss " in text and "Confirmed on seeds [0, 1]" in text
    adopted_recipe = yaml.safe_load(text)
    assert adopted_recipe["output"] == "runs/tasks/tf_oct4_mafk/cnn-tuned"
    assert adopted_recipe["optim"] == yaml.safe_load((out / "best_recipe.yaml").read_text())["optim"]
    # a search folder that moved still adopts (its runs are found from the folder, not the summary's
    # path); one whose final run is missing is refused with nothing written
    moved = tmp_path / "elsewhere" / "search"
    shutil.copytree(out, moved)
    (moved / "final" / Path(resumed["final"]["runs"]).name / "seed1" / "metrics.json").unlink()
    refused = subprocess.run([sys.executable, str(REPO / "benchmarks" / "adopt_tune.py"), str(moved), "--task",
                              "tf_oct4_mafk", "--method", "hyena-tuned", "--command", "x", "--runs",
                              str(tmp_path / "suite2"), "--recipes", str(tmp_path / "tuned2")],
                             capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert refused.returncode != 0 and "seed1/metrics.json" in refused.stderr
    assert not (tmp_path / "tuned2").exists() and not (tmp_path / "suite2").exists()
    for seed, auroc in zip((0, 1), resumed["final"]["test"]["auroc"]["values"], strict=True):
        cached = json.loads(
            (tmp_path / "suite" / "tf_oct4_mafk" / "cnn-tuned" / f"seed{seed}" / "metrics.json").read_text()
        )
        assert cached["test"]["auroc"] == auroc


def test_a_list_valued_option_is_searched_confirmed_and_written_back_as_a_list(tmp_path):
    """The conv head's widths: each trial, rerun and final run builds the widths it was given,
    the enqueued recipe's included, and the table, summary and recipe show them as lists."""
    out = tmp_path / "tune"
    widths = [[8], [4, 4]]
    search = {
        "space": {"head.conv_channels": widths},
        "enqueue": [{"head.conv_channels": [4, 4]}],
        "seeds": [0],
        "trial_tokens": 25_600,
        "val_checks": 2,
        "final_tokens": 12_800,
        "confirm": 1,
        "confirm_seeds": [1],
    }
    summary = tune(out, trials=2, search=search, head=HeadOptions(kind="conv", conv_kernel=3))
    table = rows(out / "trials.tsv")
    assert table[0]["head.conv_channels"] == "[4, 4]" and {r["head.conv_channels"] for r in table} <= {"[8]", "[4, 4]"}
    chosen = summary["chosen_trial"]
    study = optuna.load_study(study_name="hyenadna-tune", storage=f"sqlite:///{out / 'study.db'}")
    params = next(t.params for t in study.trials if t.number == chosen)  # as Optuna stores them: JSON text
    width = json.loads(params["head.conv_channels"])
    assert width in widths and summary["best_trial"]["params"]["head.conv_channels"] in widths
    recipe = yaml.safe_load((out / "best_recipe.yaml").read_text())
    assert recipe["head"]["conv_channels"] == width and recipe["head"]["kind"] == "conv"
    for number, row in enumerate(table):  # what each trial and its rerun trained with: its row's widths
        for run in [out / "trials" / f"{number:04d}", *(out / "confirm").glob(f"{number:04d}/seed1")]:
            assert yaml.safe_load((run / "config.yaml").read_text())["head"]["conv_channels"] == json.loads(
                row["head.conv_channels"]
            )
    built = json.loads((Path(summary["final"]["runs"]) / "seed0" / "model" / "task.json").read_text())
    assert built["conv_channels"] == width and built["kind"] == "conv"
    assert (out / "confirm" / "0000" / "seed1").is_dir()  # the enqueued recipe is always confirmed


def test_refusals_come_before_anything_is_written(tmp_path):
    out = tmp_path / "tune"
    with pytest.raises(HyenaDNAError, match="search space optim.lr: low .* must be below high"):
        run_tune(DATA, SearchOptions(space={"optim.lr": {"low": 1, "high": 0.1}}), MODEL, output=str(out))
    with pytest.raises(HyenaDNAError, match="names head.pooling, which the search space does not vary"):
        run_tune(DATA, SearchOptions(enqueue=[{"head.pooling": "max", "optim.lr": 1e-3}],
                                     space={"optim.lr": [1e-3]}), MODEL, output=str(out))  # fmt: skip
    no_val = LabelledData(train=DATA.train, val_fraction=0.0)
    with pytest.raises(HyenaDNAError, match="tuning judges trials on a validation split, and the data has none"):
        run_tune(no_val, SearchOptions(), MODEL, output=str(out))
    one_class_val = tmp_path / "one_class_val.csv"  # the final runs' calibration could not be fitted
    one_class_val.write_text("sequence,label,split\n" + "".join(f"ACGTACGTAC,{'ab'[i % 2]},train\n" for i in range(8))
                             + "ACGTACGTAC,a,val\n")  # fmt: skip
    with pytest.raises(HyenaDNAError, match=r"--tuning.calibrate: calibration needs every class .*\[.b.\]"):
        run_tune(LabelledData(train=str(one_class_val), reader={"split_col": "split"}), SearchOptions(), MODEL,
                 tuning=FinetuneOptions(calibrate=True), output=str(out))  # fmt: skip
    with pytest.raises(HyenaDNAError, match="set --search.trial_tokens or --search.trial_minutes"):
        SearchOptions(trial_tokens=None)
    with pytest.raises(HyenaDNAError, match="--search.seeds repeats a seed"):
        SearchOptions(seeds=[1, 1])
    two = TrainerOptions(devices=2, accelerator="cpu")
    with pytest.raises(HyenaDNAError, match="tune trains each trial on one device, got --trainer.devices 2"):
        run_tune(DATA, SearchOptions(), MODEL, trainer=two, output=str(out))
    with pytest.raises(HyenaDNAError, match="cannot open the study storage nosuchdb://x"):
        run_tune(DATA, SearchOptions(storage="nosuchdb://x"), MODEL, output=str(out))
    with pytest.raises(HyenaDNAError, match=r"search space model.overrides.d_model: .*d_model.*-8"):
        run_tune(DATA, SearchOptions(space={"model.overrides.d_model": [16, -8]}), MODEL, output=str(out))
    deep = {"head.conv_channels": [[8], [8] * 8]}  # 200-base windows halve 7 times, not 8
    refusal = r"search space head.conv_channels: \[8, 8, 8, 8, 8, 8, 8, 8\] has 8 pooling blocks, which pool "
    with pytest.raises(HyenaDNAError, match=refusal + "the data's 200-token window to nothing"):
        run_tune(DATA, SearchOptions(space=deep), MODEL, head=HeadOptions(kind="conv"), output=str(out))
    with pytest.raises(HyenaDNAError, match=r"^--head.conv_channels \[8, 8, 8, 8, 8, 8, 8, 8\] has 8 pooling"):
        run_tune(DATA, SearchOptions(space={"head.kind": ["linear", "conv"]}), MODEL,
                 head=HeadOptions(conv_channels=[8] * 8), output=str(out))  # fmt: skip
    cut = replace(DATA, max_length=64, truncation="right")  # the head reads 64 bases: 6 halvings, not 7
    with pytest.raises(HyenaDNAError, match=r"--head.conv_channels \[8, 8, 8, 8, 8, 8, 8\] .*64-token window"):
        run_tune(cut, SearchOptions(), MODEL, head=HeadOptions(kind="conv", conv_channels=[8] * 7), output=str(out))
    linear = SimpleNamespace(head=HeadOptions(kind="linear"), data=DATA)  # no conv head drawn: nothing to fit
    check_conv_depth(linear, read_search_space(deep | {"head.kind": ["linear", "positional"]}), 200)
    seven = {"head.kind": ["conv"], "head.conv_channels": [[8] * 7]}
    check_conv_depth(linear, read_search_space(seven), 200)
    with pytest.raises(HyenaDNAError, match="pool the data's 100-token window"):  # at the shortest cut searched
        check_conv_depth(linear, read_search_space(seven | {"data.max_length": [None, 100, 150]}), 200)
    with pytest.raises(HyenaDNAError, match=r"holds \?, which an SQLite URL cannot carry"):
        run_tune(DATA, SearchOptions(), MODEL, output=str(tmp_path / "what?"))
    with pytest.raises(HyenaDNAError, match="--search.folds is 0 .* or at least 2, got 1"):
        SearchOptions(folds=1)
    tiny = tmp_path / "tiny.csv"  # 3 records of class b: 4 folds cannot each validate on it
    tiny.write_text("sequence,label\n" + "".join(f"ACGTACGTAC,{'a' if i > 2 else 'b'}\n" for i in range(12)))
    with pytest.raises(HyenaDNAError, match="--search.folds 4, fold 0: 4 folds: class 'b' has only 3 training and"):
        run_tune(LabelledData(train=str(tiny)), SearchOptions(folds=4), MODEL, output=str(out))
    late = tmp_path / "late.csv"  # multi-label rows fold in file order: label b only in the last block
    late.write_text("sequence,label\n" + "".join(f"ACGTACGTAC,{'a;b' if i >= 15 else 'a'}\n" for i in range(20)))
    multilabel = LabelledData(train=str(late), task="multilabel", reader={"label_separator": ";"})
    with pytest.raises(HyenaDNAError, match="--search.folds 4, fold 3: .*unknown label 'b'"):
        run_tune(multilabel, SearchOptions(folds=4), MODEL, output=str(out))
    shared = f"sqlite:///{tmp_path / 'shared.db'}"  # a study another run made: joined only when asked
    optuna.create_study(storage=shared, study_name="hyenadna-tune", direction="maximize")
    with pytest.raises(HyenaDNAError, match="the study hyenadna-tune already exists in .*shared.db; pass --resume"):
        run_tune(DATA, SearchOptions(storage=shared), MODEL, output=str(out))
    assert not out.exists() and not (tmp_path / "what?").exists()


def test_a_search_whose_trials_all_fail_says_why_and_keeps_its_table(tmp_path, monkeypatch):
    """A recipe every trial refuses (here a fine-tune that always fails) ends the search with the
    reason, after at most search.trials attempts, and trials.tsv still lists them."""

    def refused(*args, **kwargs):
        raise HyenaDNAError("a recipe the data refuses")

    monkeypatch.setattr(trials_module, "finetune", refused)
    out = tmp_path / "tune"
    with pytest.raises(HyenaDNAError, match="no trial of the study hyenadna-tune finished: a recipe the data refuses"):
        run_tune(DATA, SearchOptions(space={"optim.lr": [1e-3, 1e-4]}, trials=2), MODEL, output=str(out))
    table = rows(out / "trials.tsv")
    assert [r["state"] for r in table] == ["FAIL", "FAIL"] and table[0]["error"] == "a recipe the data refuses"


def test_a_best_trial_within_the_margin_leaves_the_enqueued_recipe_chosen():
    """The promoter search's case: the best trial beat the hand recipe (enqueued first) by 0.003
    on 192 validation windows, noise, and tested worse; with min_gain the hand recipe is kept."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for direction, scores in (("maximize", (0.697, 0.650, 0.700)), ("minimize", (0.303, 0.350, 0.300))):
        study = optuna.create_study(direction=direction)
        study.enqueue_trial({"x": 0.5})
        for score in scores:
            study.tell(study.ask(x), score)
        assert chosen_trial(study, 0.0).number == 2  # no margin: the best wins
        assert chosen_trial(study, 0.02).number == 0  # within the margin: the recipe you came with
        assert chosen_trial(study, 0.001).number == 2  # beaten by more than the margin


class FakeObjective:
    """Reruns that score what a table says: what confirmation does with them is under test."""

    def __init__(self, reruns: dict[tuple[int, int], float]) -> None:
        self.reruns, self.calls = reruns, []

    def rerun(self, trial, seed: int) -> float:
        self.calls.append((trial.number, seed))
        return self.reruns[trial.number, seed]


def test_confirmation_reruns_the_leaders_and_the_enqueued_recipe_and_chooses_by_the_mean():
    """A lucky trial (best single score, poor on other seeds) loses to a steadier one once the
    leaders are rerun; the enqueued recipe is always among those rerun; seeds must be distinct
    and never the search's own."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"x": 0.5})
    for score in (0.60, 0.75, 0.72, 0.50):  # trial 0 enqueued; 1 lucky; 2 steady; 3 poor
        study.tell(study.ask(x), score)
    reruns = {(1, 1): 0.62, (1, 2): 0.64, (2, 1): 0.71, (2, 2): 0.73, (0, 1): 0.61, (0, 2): 0.59}
    objective = FakeObjective(reruns)
    scores = confirmed_scores(study, objective, SearchOptions(confirm=2, confirm_seeds=[1, 2]))
    assert sorted(scores) == [0, 1, 2] and (3, 1) not in objective.calls  # the best two, and the enqueued one
    assert scores[1]["values"] == [0.75, 0.62, 0.64] and scores[2]["mean"] == pytest.approx(0.72)
    assert chosen_trial(study, 0.0).number == 1  # one run each: the lucky trial
    means = {number: c["mean"] for number, c in scores.items()}
    assert chosen_trial(study, 0.0, means).number == 2  # the mean of three: the steady one
    assert chosen_trial(study, 0.2, means).number == 0  # within the margin of the enqueued recipe's mean
    with pytest.raises(HyenaDNAError, match="--search.confirm needs distinct --search.confirm_seeds"):
        SearchOptions(confirm=2, confirm_seeds=[1, 1])
    with pytest.raises(HyenaDNAError, match=r"confirm_seeds \[0, 1\] holds the search's own --seed 0"):
        run_tune(DATA, SearchOptions(confirm=1, confirm_seeds=[0, 1]), MODEL, output="unused")


@pytest.mark.slow
def test_a_cross_validated_search_scores_every_fold_and_prunes_on_the_first(tmp_path):
    """With search.folds, a trial trains once per fold of the pooled training records (the TF
    files are written class by class: each fold still holds both) and scores their mean; the
    hopeless trial is pruned on its first fold's curve and never trains the second."""
    out = tmp_path / "tune"
    summary = tune(out, trials=2, search={"folds": 2, "seeds": [0], "final_tokens": 12_800})
    assert summary["judged_on"] == "2-fold cross-validation"
    assert summary["study"]["trials"] == {"complete": 1, "pruned": 1}
    table = rows(out / "trials.tsv")
    folds = [float(v) for v in table[0]["fold_values"].split(",")]
    assert len(folds) == 2 and folds[0] != folds[1]
    assert float(table[0]["value"]) == pytest.approx(sum(folds) / 2, rel=1e-5)
    assert table[0]["steps"] == "24"  # 12 a fold
    assert sorted(p.name for p in (out / "trials" / "0000").iterdir()) == ["fold0", "fold1"]
    assert sorted(p.name for p in (out / "trials" / "0001").iterdir()) == ["fold0"]
    assert json.loads((out / "trials" / "0000" / "fold1" / "fold.json").read_text()) == {"fold": 1, "folds": 2}
    header = (out / "best_recipe.yaml").read_text().splitlines()[0]
    assert "on the 2-fold cross-validation" in header
    config = (out / "config.yaml").read_text()  # a study keeps its folds: scores of other data would not compare
    with pytest.raises(HyenaDNAError, match="judges its trials with --search.folds 2, not 3; continue it with 2"):
        tune(out, trials=3, search={"folds": 3}, resume=True)
    assert (out / "config.yaml").read_text() == config
    final = summary["final"]  # the final run trains and tests on the data's own splits
    assert final["seeds"] == [0] and "mcc" in final["test"]
    metrics = json.loads((Path(final["runs"]) / "seed0" / "metrics.json").read_text())
    plain = sum((TF / f"{name}_train.fa").read_text().count(">") for name in ("oct4", "mafk"))
    assert metrics["split_sizes"]["train"] + metrics["split_sizes"]["val"] == plain
    adopted = subprocess.run([sys.executable, str(REPO / "benchmarks" / "adopt_tune.py"), str(out), "--task",
                              "tf_oct4_mafk", "--method", "hyena-tuned", "--command", "x", "--runs",
                              str(tmp_path / "suite"), "--recipes", str(tmp_path / "tuned")],
                             capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert adopted.returncode == 0, adopted.stderr[-2000:]
    first = (tmp_path / "tuned" / "tf_oct4_mafk.yaml").read_text().splitlines()[0]
    assert "on 2-fold cross-validation of the training and validation records (trial 0, val/loss" in first

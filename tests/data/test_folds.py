"""Blocked cross-validation folds: every record validated exactly once, contiguous blocks within
each class, every class in every fold; on the real promoter table, the test split untouched."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hyenadna.data.datamodules import LabelledDataModule
from hyenadna.data.folds import fold_indices, fold_split
from hyenadna.data.labels import LabelledRecord
from hyenadna.errors import HyenaDNAError

PROMOTERS = Path(__file__).resolve().parents[2] / "data" / "tasks" / "promoters_chr20.csv.gz"


def records(labels: list[str]) -> list[LabelledRecord]:
    return [LabelledRecord(f"r{i}", "ACGT", (label,)) for i, label in enumerate(labels)]


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_folds_are_contiguous_blocks_of_each_class_and_validate_every_record_once(folds):
    rng = random.Random(folds)
    labels = [rng.choice("abc") for _ in range(97)] + ["a"] * 5  # unbalanced, one class sorted at the end
    data = records(labels)
    assigned = fold_indices(data, folds, stratify=True)
    for label in "abc":
        members = [f for f, lab in zip(assigned, labels, strict=True) if lab == label]
        assert members == sorted(members)  # blocks in record order
        sizes = [members.count(k) for k in range(folds)]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1  # every class in every fold
    seen = []
    for k in range(folds):
        train, val = fold_split(data, (k, folds), stratify=True)
        assert {r.name for r in train}.isdisjoint(r.name for r in val)
        assert len(train) + len(val) == len(data)
        assert [r.name for r in val] == sorted((r.name for r in val), key=lambda n: int(n[1:]))  # record order
        seen += [r.name for r in val]
    assert sorted(seen) == sorted(r.name for r in data)


def test_a_file_written_class_by_class_still_gives_every_fold_every_class():
    data = records(["x"] * 10 + ["y"] * 10)
    assert fold_indices(data, 2, stratify=False) == [0] * 10 + [1] * 10  # plain blocks: one class a fold
    _, val = fold_split(data, (1, 2), stratify=True)
    assert [r.label[0] for r in val] == ["x"] * 5 + ["y"] * 5


def test_folds_a_class_cannot_fill_and_bad_folds_are_refused():
    with pytest.raises(HyenaDNAError, match="3 folds: class 'b' has only 2 training and validation records"):
        fold_indices(records(["a"] * 9 + ["b"] * 2), 3, stratify=True)
    for fold in [(0, 1), (2, 2), (-1, 3), (0.0, 2), (True, 2)]:
        with pytest.raises(HyenaDNAError, match="fold"):
            fold_split(records(["a"] * 4), fold, stratify=True)


def test_folds_of_the_real_promoter_table_pool_train_and_val_and_leave_test_alone():
    def module(fold):
        dm = LabelledDataModule(str(PROMOTERS), reader={"split_col": "split", "name_col": "name"}, fold=fold)
        dm.setup("fit")
        return dm

    plain = module(None)
    sizes = plain.split_sizes()
    pooled = [r.name for r in plain.records("train")] + [r.name for r in plain.records("val")]
    validated = []
    for k in range(4):
        dm = module((k, 4))
        assert [r.name for r in dm.records("test")] == [r.name for r in plain.records("test")]
        assert dm.split_sizes()["train"] + dm.split_sizes()["val"] == sizes["train"] + sizes["val"]
        val = dm.records("val")
        assert {r.label[0] for r in val} == {"promoter", "background"}
        validated += [r.name for r in val]
    assert sorted(validated) == sorted(pooled)
    # the table is in chromosome order, so the last fold is the stretch the recipe's own split
    # validates on (44-56 Mb), give or take the block edges
    last = {r.name for r in module((3, 4)).records("val")}
    own = {r.name for r in plain.records("val")}
    assert len(last & own) / len(own) > 0.9

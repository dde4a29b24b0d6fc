"""Blocked cross-validation folds of labelled records, for judging recipes on small data.

A validation split of a few hundred sequences ranks recipes by noise: the sd of an MCC on 192
windows is several hundredths, as large as the differences a search looks for. Pooling the
training and validation records and validating on each of K folds in turn scores a recipe on
every one of them. The folds are contiguous blocks in the order the records were read (within
each class, for a single-label classifier; in plain record order for multi-label and regression
data): genomic tables in position order give blocks of neighbouring sequence, so a fold
validates on a stretch its training did not see, as a split by chromosome region does (but for
windows that overlap across a block's edge: there is no gap between blocks); and a file written
class by class still gives every fold every class. A regression table sorted by its target
gives folds that extrapolate: shuffle it first if that is not what you want.
"""

from __future__ import annotations

from collections.abc import Sequence

from hyenadna.data.labels import LabelledRecord
from hyenadna.errors import HyenaDNAError


def check_fold(fold: tuple[int, int]) -> tuple[int, int]:
    """``(k, K)`` as integers with ``K >= 2`` and ``0 <= k < K``, else an error naming both."""
    try:
        k, folds = fold
    except (TypeError, ValueError):
        raise HyenaDNAError(f"a fold is (index, count), got {fold!r}") from None
    if isinstance(k, bool) or isinstance(folds, bool) or not isinstance(k, int) or not isinstance(folds, int):
        raise HyenaDNAError(f"a fold is (index, count) in integers, got {fold!r}")
    if folds < 2 or not 0 <= k < folds:
        raise HyenaDNAError(f"fold {k} of {folds}: the count must be at least 2 and the index in [0, {folds})")
    return k, folds


def fold_indices(records: Sequence[LabelledRecord], folds: int, stratify: bool) -> list[int]:
    """Each record's fold in ``[0, folds)``: the k-th of ``folds`` contiguous blocks in record
    order, taken within each class when ``stratify`` (single labels), so block sizes differ by at
    most one record per class. A class (or, unstratified, the data) with fewer records than
    folds is refused: some fold would validate without it."""
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(record.label if stratify and len(record.label) == 1 else None, []).append(i)
    assigned = [0] * len(records)
    for label, members in groups.items():
        if len(members) < folds:
            what = f"class {label[0]!r} has" if label is not None else "the data have"
            raise HyenaDNAError(f"{folds} folds: {what} only {len(members)} training and validation records")
        for rank, i in enumerate(members):
            assigned[i] = rank * folds // len(members)
    return assigned


def fold_split(
    records: Sequence[LabelledRecord], fold: tuple[int, int], stratify: bool
) -> tuple[list[LabelledRecord], list[LabelledRecord]]:
    """Fold ``fold = (k, K)`` of ``records``: (training records, validation records), each in
    record order; validation is the k-th block of :func:`fold_indices`."""
    k, folds = check_fold(fold)
    assigned = fold_indices(records, folds, stratify)
    train = [r for r, f in zip(records, assigned, strict=True) if f != k]
    val = [r for r, f in zip(records, assigned, strict=True) if f == k]
    return train, val

"""GC content and GC-matched draws, on random sequences of known composition."""

from __future__ import annotations

import numpy as np
import pytest

from hyenadna.data.composition import gc_content, gc_matched, split_parts
from hyenadna.errors import HyenaDNAError


def random_seqs(rng: np.random.Generator, count: int, gc_low: float, gc_high: float, length: int = 200) -> list[str]:
    """Sequences whose chance of G or C at each base is drawn per sequence in [gc_low, gc_high)."""
    out = []
    for p in rng.uniform(gc_low, gc_high, size=count):
        strong = rng.random(length) < p
        out.append("".join(np.where(strong, rng.choice(list("GC"), length), rng.choice(list("AT"), length))))
    return out


def histogram(seqs: list[str], bins: int) -> np.ndarray:
    gc = np.array([gc_content(s) for s in seqs])
    return np.bincount(np.minimum((gc * bins).astype(int), bins - 1), minlength=bins)


def test_gc_content_counts_strong_bases_among_known_ones():
    assert gc_content("ACGT") == 0.5
    assert gc_content("ggcA") == 0.75
    assert gc_content("GCNNNNNNAT") == 0.5  # N counts for neither
    assert gc_content("GGGG") == 1.0
    with pytest.raises(HyenaDNAError, match="4 characters has no A, C, G or T"):
        gc_content("NNNN")


def test_matched_draws_have_the_references_histogram():
    rng = np.random.default_rng(20261205)
    reference = random_seqs(rng, 300, 0.45, 0.75)  # GC-rich positives
    candidates = random_seqs(rng, 4000, 0.2, 0.8)  # mostly other composition
    for bins in (10, 20):
        picked = gc_matched(candidates, reference, bins=bins, seed=3)
        assert len(picked) == len(set(picked.tolist())) == len(reference)
        assert np.array_equal(histogram([candidates[i] for i in picked], bins), histogram(reference, bins))
    assert np.array_equal(gc_matched(candidates, reference, seed=3), gc_matched(candidates, reference, seed=3))
    assert not np.array_equal(gc_matched(candidates, reference, seed=3), gc_matched(candidates, reference, seed=4))
    mean_gc = np.mean([gc_content(candidates[i]) for i in gc_matched(candidates, reference)])
    assert abs(mean_gc - np.mean([gc_content(s) for s in reference])) < 0.01


def test_two_parts_match_each_sides_composition_not_only_the_whole():
    """References rich on the left and poor on the right (a donor's exon and intron sides), from
    candidates of every combination: the whole-window match takes rich-poor, poor-rich and
    middling windows alike; the two-part match takes the references' side on each side."""
    rng = np.random.default_rng(20261206)

    def joined(count: int, left: tuple[float, float], right: tuple[float, float]) -> list[str]:
        return [a + b for a, b in zip(random_seqs(rng, count, *left, 100), random_seqs(rng, count, *right, 100))]

    rich, poor = (0.6, 0.8), (0.25, 0.45)
    reference = joined(200, rich, poor)
    candidates = (
        joined(1500, rich, poor) + joined(1500, poor, rich) + joined(1500, rich, rich) + joined(1500, poor, poor)
    )

    def sides(seqs: list[str]) -> np.ndarray:
        return np.array([[gc_content(part) for part in split_parts(s, 2)] for s in seqs])

    whole = sides([candidates[i] for i in gc_matched(candidates, reference, bins=10, seed=1)])
    halves = sides([candidates[i] for i in gc_matched(candidates, reference, bins=5, seed=1, parts=2)])
    ref = sides(reference)
    assert abs(whole.mean() - ref.mean()) < 0.01 and abs(halves.mean() - ref.mean()) < 0.01
    skew = lambda gc: float(np.mean(gc[:, 0] - gc[:, 1]))  # noqa: E731
    assert skew(ref) > 0.25 and abs(skew(whole)) < 0.1  # the whole-window match loses the side
    assert abs(skew(halves) - skew(ref)) < 0.03
    joint = lambda gc: np.bincount(np.minimum((gc * 5).astype(int), 4) @ [5, 1], minlength=25)  # noqa: E731
    assert np.array_equal(joint(halves), joint(ref))


def test_parts_are_equal_cuts_with_the_rest_in_the_last():
    assert split_parts("ACGTA", 2) == ["AC", "GTA"]
    assert split_parts("ACGTAC", 3) == ["AC", "GT", "AC"]
    assert split_parts("ACG", 1) == ["ACG"]
    with pytest.raises(HyenaDNAError, match="3 characters cannot be cut into 4 parts"):
        split_parts("ACG", 4)
    with pytest.raises(HyenaDNAError, match="parts must be at least 1"):
        split_parts("ACG", 0)


def test_a_scaled_histogram_rounds_by_largest_remainders():
    reference = ["AAAT", "AAGT", "AGGC", "GGGC"]  # GC 0, 0.25, 0.75, 1: bins 0, 0, 1, 1 of 2
    candidates = ["ATAT"] * 5 + ["GCGC"] * 5
    for n, low in ((6, 3), (2, 1), (0, 0)):
        picked = gc_matched(candidates, reference, n=n, bins=2)
        assert len(picked) == n and int(np.sum(picked < 5)) == low
    assert len(gc_matched(np.array(candidates), np.array(reference), bins=2)) == 4  # arrays as well as lists
    odd = gc_matched(candidates, ["AAAA", "AAAA", "GGGG"], n=4, bins=2)
    assert int(np.sum(odd < 5)) == 3  # 8/3 and 4/3 round to 3 and 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidates": ["ATAT"] * 5}, r"GC bin \[0.50, 1.00\] needs 1 candidates and has 0"),
        ({"reference": []}, "at least one reference"),
        ({"bins": 0}, "bins must be at least 1"),
        ({"n": -1}, "n must be at least 0"),
        ({"parts": 0}, "parts must be at least 1"),
        (
            {"parts": 2, "reference": ["GGAA"], "candidates": ["AAGG", "ATAT"]},
            r"GC bin \[0.50, 1.00\] x \[0.00, 0.50\) ",
        ),
        (
            {"parts": 2, "reference": ["GGAA"], "candidates": ["GGNN"]},
            r"candidate 0 \(cut into 2 parts\): .* no A, C, G or T",
        ),
        ({"parts": 2, "reference": ["NNAT"]}, r"reference 0 \(cut into 2 parts\): a sequence of 2 characters has no A"),
        ({"parts": 7, "bins": 10}, "10 bins over 7 parts make 10,000,000 cells"),
    ],
)
def test_refusals_name_what_is_wrong(kwargs, message):
    args = {"candidates": ["ATAT", "GCGC"], "reference": ["ATAT", "GCGC"], "bins": 2} | kwargs
    with pytest.raises(HyenaDNAError, match=message):
        gc_matched(**args)

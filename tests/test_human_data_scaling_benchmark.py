"""benchmarks/human_data_scaling.py compares models trained on less of chr20 with the bundled
ones: that holds only if every point is scored on exactly the bundled recipe's held-out bases and
trains on a prefix of its training stretch, never on the tail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from hyenadna.data.corpus import Corpus, GenomeSource

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "human_data_scaling.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("human_data_scaling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def corpus_of(recipe: dict, genome: Path) -> Corpus:
    return Corpus([GenomeSource(**{**g, "path": str(genome)}) for g in recipe["data"]["genomes"]])


def spans(corpus: Corpus, split: str) -> list[tuple[str, int, int]]:
    return [(iv.contig, iv.start, iv.end) for iv in corpus.intervals(split)]


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_each_point_trains_on_a_prefix_and_is_scored_on_the_bundled_held_out_tail(real, fraction):
    bench = load_benchmark()
    bundled = corpus_of(yaml.safe_load(bench.RECIPE.read_text()), real.chr20)
    recipe = bench.recipe_for(fraction, steps=7)
    point = corpus_of(recipe, real.chr20)
    assert spans(point, "test") == spans(bundled, "val")
    (contig, start, end), = spans(bundled, "train")  # fmt: skip
    (train_contig, train_start, train_end), = spans(point, "train")  # fmt: skip
    assert (train_contig, train_start) == (contig, start)
    assert abs((train_end - start) - fraction * (end - start)) <= 1  # the first `fraction`, to the base
    assert spans(point, "val") == ([] if fraction == 1 else [(contig, train_end, end)])  # unused, then the tail
    assert recipe["trainer"]["max_steps"] == 7
    assert recipe["trainer"]["val_every_n_steps"] == 0  # nothing of the unused stretch steers training
    assert bench.training_bases(point) == train_end - start

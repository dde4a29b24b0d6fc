"""Does a pretrained model know a chr20 task's validation region better than its test region?

    python benchmarks/split_familiarity.py        # about 4 minutes on one thread

The chr20 tasks validate on genes inside the stretch the bundled human models were pretrained on
(bases 0 to 56,722,968) and test on genes after it. If pretraining had memorised the validation
sequence, validation would flatter the pretrained Hyena against the CNN, and a search judged
there would pick recipes that test worse. This prints bits per base of each split's windows
under the pretrained models, random weights, and Markov chains fitted on the same pretraining
stretch: a chain of order 6 cannot memorise 250-base windows, so its test - validation gap is
the regions' own difference in difficulty, the control for the models' gap.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import torch

from hyenadna import load
from hyenadna.analysis.lm_loss import model_bits_per_base
from hyenadna.analysis.markov import MarkovChain, windows_bits_per_base
from hyenadna.data.genome import Genome
from hyenadna.data.tokenizer import CharacterTokenizer

ROOT = Path(__file__).resolve().parents[1]
CHR20 = "/usr/share/doc/vt/examples/ref/20.fa.gz"
PRETRAINED_END = 56_722_968
TASKS = ("promoters_chr20", "splice_chr20")
MODELS = ("tiny-1k-chr20", "tiny-1k-genomes", "tiny-1k")
ORDERS = (6, 10)


def split_windows(task: str, tokenizer: CharacterTokenizer) -> dict[str, list]:
    """Each split's windows as token ids, cut to the split's shortest so that they batch."""
    splits: dict[str, list] = {}
    with gzip.open(ROOT / "data" / "tasks" / f"{task}.csv.gz", "rt") as fh:
        for row in csv.DictReader(fh):
            splits.setdefault(row["split"], []).append(tokenizer.encode_bases(row["sequence"].upper()))
    shortest = {split: min(map(len, ws)) for split, ws in splits.items()}
    return {split: [w[: shortest[split]] for w in ws] for split, ws in splits.items()}


def main() -> None:
    torch.set_num_threads(1)
    tokenizer = CharacterTokenizer()
    windows = {task: split_windows(task, tokenizer) for task in TASKS}
    stretch = tokenizer.encode_bases(Genome(CHR20).fetch("20", 0, PRETRAINED_END).upper())
    scorers = {f"markov-{k}": MarkovChain(k, 128.0).fit([stretch]) for k in ORDERS}
    rows = []
    for name in MODELS:
        torch.manual_seed(0)  # the random-weights row
        model = load(name).eval()
        for task in TASKS:
            bits = {s: model_bits_per_base(model, ws, 64)[0] for s, ws in windows[task].items()}
            rows.append((task, name, bits))
    for name, chain in scorers.items():
        for task in TASKS:
            bits = {s: windows_bits_per_base(chain, ws)[0] for s, ws in windows[task].items()}
            rows.append((task, name, bits))
    print("| task | scorer | train | val | test | test - val |")
    print("|---|---|---|---|---|---|")
    for task, name, bits in sorted(rows, key=lambda r: r[0]):
        print(f"| {task} | {name} | {bits['train']:.4f} | {bits['val']:.4f} | {bits['test']:.4f} | "
              f"{bits['test'] - bits['val']:+.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()

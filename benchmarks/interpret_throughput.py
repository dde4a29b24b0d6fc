"""Speed of interpretation and generation on this machine, printed as a table.

    .venv/bin/python benchmarks/interpret_throughput.py [--threads 2] [--json PATH]

* **ISM**: mutants per second of :func:`hyenadna.analysis.attribution.ism` on 200-base sequences through a
  ``tiny-1k`` classification head (mean pooling) and through the CNN baseline, batches of 64
  mutants; and gradient x input sequences per second for the same heads.
* **Generation**: new bases per second of ``model.generate`` (exact incremental decoding,
  :mod:`hyenadna.inference.generation`) with the ``tiny-16k`` shape at prompts of 1k and 16k bases, 256 new
  bases, one prompt; beside it the naive way, a full forward pass over the whole sequence per new
  base (timed over 8 bases), which is what the incremental decoder saves.

Random weights throughout: speed does not depend on them. Float32, inference.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from hyenadna import HyenaConfig, HyenaDNA, load
from hyenadna.analysis.attribution import gradient_x_input, ism
from hyenadna.data.tokenizer import CharacterTokenizer
from hyenadna.heads.cnn import ConvClassifier, ConvConfig
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.task_model import SequenceModel
from hyenadna.inference.likelihood import BASE_IDS


def random_dna(n: int, length: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ism_rows() -> list[dict]:
    head = HeadConfig("multiclass", ["a", "b"])
    models = {
        "tiny-1k head": SequenceModel(HyenaDNA(HyenaConfig(d_model=128, n_layer=2, l_max=1026)), head).eval(),
        "CNN": ConvClassifier(ConvConfig(length=200), head).eval(),
    }
    seqs = random_dna(4, 200)
    rows = []
    for name, model in models.items():
        ism(model, seqs[:1], batch_size=64)  # warm-up
        seconds = timed(lambda m=model: ism(m, seqs, batch_size=64))
        grad_seconds = timed(lambda m=model: gradient_x_input(m, seqs * 8, batch_size=16))
        rows.append({"what": f"ISM, {name}, 200 bp", "per_s": 3 * 200 * len(seqs) / seconds, "unit": "mutants/s"})
        rows.append({"what": f"gradient x input, {name}, 200 bp", "per_s": len(seqs) * 8 / grad_seconds,
                     "unit": "sequences/s"})  # fmt: skip
    return rows


def generation_rows(new_bases: int = 256, naive_bases: int = 8) -> list[dict]:
    torch.manual_seed(0)
    model = load("tiny-16k").eval()
    tokenizer = CharacterTokenizer()
    rows = []
    for prompt_length in (1024, 16384 - new_bases - 2):
        prompt = random_dna(1, prompt_length)[0]
        model.generate(prompt, 4, seed=0)  # warm-up (filters, allocator)
        seconds = timed(lambda p=prompt: model.generate(p, new_bases, seed=0))
        ids = torch.as_tensor(tokenizer.encode_bases(prompt))[None]

        def naive(ids=ids):
            with torch.inference_mode():
                current = ids
                for _ in range(naive_bases):
                    logits = model(current)[0, -1, BASE_IDS]
                    current = torch.cat([current, (logits.argmax() + BASE_IDS.start).view(1, 1)], dim=1)

        naive_seconds = timed(naive)
        rows.append({"what": f"generate, tiny-16k, prompt {prompt_length:,}", "per_s": new_bases / seconds,
                     "unit": "bases/s", "full_forward_per_base_s": naive_bases / naive_seconds})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = ism_rows() + generation_rows()
    print("| what | speed | recompute-per-base (bases/s) |\n|---|---|---|")
    for row in rows:
        naive = row.get("full_forward_per_base_s")
        print(f"| {row['what']} | {row['per_s']:,.0f} {row['unit']} | {f'{naive:,.1f}' if naive else ''} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()

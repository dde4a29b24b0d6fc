"""Generation: exact incremental decoding, seeded sampling, the sampling distribution itself."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

import hyenadna
from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.cli import main
from hyenadna.data.tokenizer import A_ID, CharacterTokenizer
from hyenadna.errors import HyenaDNAError
from hyenadna.inference import generation
from hyenadna.inference.generation import IncrementalDecoder, next_base_probs
from hyenadna.inference.likelihood import BASE_IDS
from hyenadna.modules.operator import HyenaOperator


def small_model(order: int = 2, dtype=torch.float64, l_max: int = 300, seed: int = 0) -> HyenaDNA:
    torch.manual_seed(seed)
    return HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=l_max, order=order)).to(dtype).eval()


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("prompt", [1, 2, 57])
def test_incremental_logits_equal_the_full_forward(order, prompt):
    model = small_model(order)
    ids = torch.randint(A_ID, A_ID + 4, (3, 130))
    full = model(ids)
    decoder = IncrementalDecoder(model, 3, 130)
    steps = [decoder.prefill(ids[:, :prompt])]
    steps += [decoder.step(ids[:, t]) for t in range(prompt, 130)]
    got = torch.stack(steps, 1)
    rel = (got - full[:, prompt - 1 :]).abs().max() / full.abs().max()
    assert rel < 1e-12


def test_incremental_float32_agrees_with_float64():
    model = small_model(dtype=torch.float32)
    ids = torch.randint(A_ID, A_ID + 4, (2, 90))
    reference = model.double()(ids)
    model = model.float()
    decoder = IncrementalDecoder(model, 2, 90)
    steps = [decoder.prefill(ids[:, :10])] + [decoder.step(ids[:, t]) for t in range(10, 90)]
    rel = (torch.stack(steps, 1).double() - reference[:, 9:]).abs().max() / reference.abs().max()
    assert rel < 1e-5


def test_decoder_limits():
    model = small_model()
    with pytest.raises(HyenaDNAError, match="at most 300"):
        IncrementalDecoder(model, 1, 301)
    decoder = IncrementalDecoder(model, 1, 3)
    decoder.prefill(torch.tensor([[A_ID, A_ID]]))
    decoder.step(torch.tensor([A_ID]))
    with pytest.raises(HyenaDNAError, match="used them"):
        decoder.step(torch.tensor([A_ID]))
    model.train()
    with pytest.raises(HyenaDNAError, match="eval mode"):
        IncrementalDecoder(model, 1, 3)


@pytest.mark.parametrize("order", [2, 3])
def test_operator_decodes_on_its_own(order):
    """A Hyena operator alone, as mamba_ssm's modules: a prompt into an empty cache, then
    ``step`` one position at a time, equals its forward over the whole input."""
    torch.manual_seed(order)
    operator = HyenaOperator(HyenaConfig(d_model=8, n_layer=1, l_max=64, order=order, filter_order=8)).double()
    x = torch.randn(2, 40, 8, dtype=torch.float64)
    with torch.no_grad():
        whole = operator(x)
        cache = operator.allocate_inference_cache(2, 40)
        parts = [operator(x[:, :5], cache=cache)] + [operator.step(x[:, t : t + 1], cache) for t in range(5, 40)]
        assert cache.length == 40 and cache.max_length == 40
        torch.testing.assert_close(torch.cat(parts, 1), whole, rtol=1e-12, atol=1e-12)
        with pytest.raises(HyenaDNAError, match="one position"):
            operator.step(x[:, :1], cache)  # no room left
        with pytest.raises(HyenaDNAError, match="one position"):
            operator.step(x[:, :2], operator.allocate_inference_cache(2, 40))


def test_generation_reaches_no_private_member_of_another_object():
    """Decoding is the model's and the modules' business: generation.py calls public methods."""
    tree = ast.parse(Path(generation.__file__).read_text())
    private = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert not private, private


def greedy_by_full_forward(model: HyenaDNA, prompt: str, n: int) -> str:
    """Argmax decoding the slow way: a whole forward pass per new base."""
    tokenizer = CharacterTokenizer()
    seq = prompt
    with torch.no_grad():
        for _ in range(n):
            ids = torch.as_tensor(tokenizer.encode_bases(seq)).unsqueeze(0)
            seq += "ACGT"[int(model(ids)[0, -1, BASE_IDS].argmax())]
    return seq[len(prompt) :]


def test_temperature_zero_is_argmax_decoding():
    model = small_model()
    prompts = ["ACGTTGCA", "GGGATTAC", "T"]
    greedy = model.generate(prompts, 40, temperature=0)
    assert greedy == [greedy_by_full_forward(model, p, 40) for p in prompts]
    assert model.generate(prompts, 40, top_k=1, seed=5) == greedy  # top-1 sampling is argmax too


def test_a_seed_gives_the_same_bases():
    model = small_model()
    prompts = ["ACGTAC", "TTGA", "ACGTAC", "C"]
    first = model.generate(prompts, 60, seed=3)
    assert first == model.generate(prompts, 60, seed=3)
    assert all(len(s) == 60 and set(s) <= set("ACGT") for s in first)
    assert first != model.generate(prompts, 60, seed=4)
    assert isinstance(model.generate("ACG", 5, seed=0), str)


def test_sample_frequencies_follow_the_model():
    """Many draws of the first new base (and of the second, given the first) from one prefix: a
    chi-square test against the model's own probabilities."""
    model = small_model(dtype=torch.float32, seed=1)
    prompt = "ACGTTGCAAC"
    ids = torch.as_tensor(CharacterTokenizer().encode_bases(prompt)).unsqueeze(0)
    with torch.no_grad():
        probs = torch.softmax(model(ids)[0, -1, BASE_IDS].double() / 0.7, -1).numpy()
    n = 4000
    draws = model.generate([prompt] * n, 2, temperature=0.7, seed=11, batch_size=n)
    counts = np.array([sum(s[0] == b for s in draws) for b in "ACGT"])
    assert chisquare(counts, probs * n).pvalue > 1e-3
    # the second base, given the first was A
    after_a = [s[1] for s in draws if s[0] == "A"]
    ids_a = torch.as_tensor(CharacterTokenizer().encode_bases(prompt + "A")).unsqueeze(0)
    with torch.no_grad():
        probs_a = torch.softmax(model(ids_a)[0, -1, BASE_IDS].double() / 0.7, -1).numpy()
    counts_a = np.array([after_a.count(b) for b in "ACGT"])
    assert chisquare(counts_a, probs_a * len(after_a)).pvalue > 1e-3


def test_top_k_and_top_p_cut_the_distribution():
    logits = torch.full((1, 16), -50.0)
    logits[0, BASE_IDS] = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert torch.allclose(next_base_probs(logits), torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.allclose(next_base_probs(logits, top_k=2), torch.tensor([[0.625, 0.375, 0, 0]]))
    assert torch.allclose(next_base_probs(logits, top_p=0.8), torch.tensor([[0.625, 0.375, 0, 0]]))
    assert torch.allclose(next_base_probs(logits, top_p=0.81), torch.tensor([[0.5, 0.3, 0.15, 0]]) / 0.95)
    assert torch.allclose(next_base_probs(logits, temperature=0), torch.tensor([[1.0, 0, 0, 0]]))


def test_bad_generation_requests_are_named():
    model = small_model(l_max=50)
    with pytest.raises(HyenaDNAError, match="prompt 1 has 45 bases"):
        model.generate(["ACGT", "A" * 45], 10)
    with pytest.raises(HyenaDNAError, match="prompt 0 has 0 bases"):
        model.generate([""], 10)
    with pytest.raises(HyenaDNAError, match="temperature"):
        model.generate("ACGT", 5, temperature=-1)
    with pytest.raises(HyenaDNAError, match="top_p"):
        model.generate("ACGT", 5, top_p=0)
    with pytest.raises(HyenaDNAError, match="prompt 0"):
        model.generate("ACGTX", 5)


def test_generate_command_writes_fasta(tmp_path, capsys):
    prompts = tmp_path / "prompts.fa"
    prompts.write_text(">p1\nACGTACGTAA\n>p2\nTTGCA\n")
    out = tmp_path / "new.fa"
    main(["generate", "--model", "tiny-1k-chr20", "--prompts", str(prompts), "--max_new_tokens", "70",
          "--num_samples", "2", "--seed", "7", "--output", str(out)])  # fmt: skip
    records = list(hyenadna.data.fasta.read_fasta(out))
    assert [name for name, _ in records] == ["p1_sample1", "p1_sample2", "p2_sample1", "p2_sample2"]
    assert all(len(seq) == 70 and set(seq) <= set("ACGT") for _, seq in records)
    model = hyenadna.load("tiny-1k-chr20")
    again = model.generate(["ACGTACGTAA", "ACGTACGTAA", "TTGCA", "TTGCA"], 70, seed=7)
    assert [seq for _, seq in records] == again
    with pytest.raises(SystemExit):
        main(["generate", "--model", "tiny-1k-chr20", "--prompt", "ACGT", "--max_new_tokens", "5",
              "--output", str(out)])  # fmt: skip
    assert "exists" in capsys.readouterr().err
    main(["generate", "--model", "tiny-1k-chr20", "--prompt", "ACGT", "--max_new_tokens", "5", "--include_prompt",
          "--output", str(out), "--overwrite"])  # fmt: skip
    ((_, seq),) = list(hyenadna.data.fasta.read_fasta(out))
    assert seq.startswith("ACGT") and len(seq) == 9

"""`hyenadna generate` and `model.generate` under hostile input (issue 32, finding 1): every option
is checked before the model loads, and a refused run leaves no file behind."""

from __future__ import annotations

import math

import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.cli import main
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.task_model import SequenceModel
from hyenadna.inference.generation import next_base_probs
from hyenadna.inference.likelihood import BASE_IDS


def tiny() -> HyenaDNA:
    torch.manual_seed(0)
    return HyenaDNA(HyenaConfig(d_model=16, n_layer=1, l_max=64)).eval()


def refused(capsys, args: list[str]) -> str:
    """Run the command, expect the one-line error (exit 2), return it."""
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.fixture
def no_loading(monkeypatch):
    """Loading the model fails the test: refusals must come before it."""

    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr("hyenadna.model.load", boom)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--batch_size", "-1", "--batch_size"),
        ("--batch_size", "0", "--batch_size"),
        ("--max_new_tokens", "0", "--max_new_tokens"),
        ("--num_samples", "0", "--num_samples"),
        ("--temperature", "1e-40", "--temperature"),
        ("--temperature", "nan", "--temperature"),
        ("--temperature", "-1", "--temperature"),
        ("--top_k", "5", "--top_k"),
        ("--top_k", "-1", "--top_k"),
        ("--top_p", "1.5", "--top_p"),
        ("--top_p", "0", "--top_p"),
        ("--seed", str(2**70), "--seed"),
        ("--seed", "-1", "--seed"),
    ],
)
def test_out_of_range_options_are_refused_before_loading(tmp_path, capsys, no_loading, option, value, message):
    """Finding 1: --batch_size -1 (empty records), 0, --max_new_tokens 0 (an empty record), tiny or
    NaN temperatures, top_k/top_p out of range, seed=2**70 (tracebacks): one line each, no file."""
    out = tmp_path / "new.fa"
    base = ["--model", "tiny-1k", "--prompt", "ACGT", "--max_new_tokens", "5", "--output", str(out)]
    err = refused(capsys, [*base, option, value])
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_duplicate_prompt_names_are_refused_with_name_and_line(tmp_path, capsys, no_loading):
    """Finding 1: two prompts named alike gave two records under one FASTA header."""
    prompts = tmp_path / "prompts.fa"
    prompts.write_text(">p1\nACGT\n>p2\nGGA\n>p1\nTTTT\n")
    err = refused(capsys, ["--model", "tiny-1k", "--prompts", str(prompts), "--max_new_tokens", "3",
                           "--output", str(tmp_path / "new.fa")])  # fmt: skip
    assert "'p1'" in err and "line 5" in err and "line 1" in err
    assert not (tmp_path / "new.fa").exists()


def test_fine_tuned_model_folder_is_refused(tmp_path, capsys):
    """Finding 1: a fine-tuned head's folder sampled from its backbone without a word."""
    folder = tmp_path / "finetuned"
    SequenceModel(tiny(), HeadConfig("multiclass", ["a", "b"], dropout=0.0)).save_pretrained(folder)
    err = refused(capsys, ["--model", str(folder), "--prompt", "ACGT", "--max_new_tokens", "3",
                           "--output", str(tmp_path / "new.fa")])  # fmt: skip
    assert "needs a language model" in err and "task.json" in err
    assert not (tmp_path / "new.fa").exists()


def test_output_paths_are_planned(tmp_path, capsys, no_loading):
    """Finding 1: an output that is a folder (traceback), the prompts file itself (its bytes are
    kept), or in a folder that does not exist, is refused before anything is written."""
    prompts = tmp_path / "prompts.fa"
    prompts.write_text(">p1\nACGT\n")
    before = prompts.read_bytes()
    base = ["--model", "tiny-1k", "--prompts", str(prompts), "--max_new_tokens", "3"]
    (tmp_path / "folder").mkdir()
    assert "is a folder" in refused(capsys, [*base, "--output", str(tmp_path / "folder")])
    err = refused(capsys, [*base, "--output", str(prompts), "--overwrite"])
    assert "is the input --prompts" in err
    assert prompts.read_bytes() == before
    assert "does not exist" in refused(capsys, [*base, "--output", str(tmp_path / "missing" / "new.fa")])
    assert not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "prompts.fa"]


def test_python_api_refuses_the_same_settings():
    """Finding 1 in the Python API: `model.generate` with temperature 1e-40 or NaN, seed 2**70,
    batch_size 0 or -1, top_k 5 raised tracebacks or returned empty strings."""
    model = tiny()
    for kwargs, name in [
        ({"temperature": 1e-40}, "temperature"),
        ({"temperature": math.nan}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"seed": 2**70}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -1}, "batch_size"),
        ({"top_k": 5}, "top_k"),
        ({"top_p": 1.5}, "top_p"),
    ]:
        with pytest.raises(HyenaDNAError, match=name):
            model.generate("ACGT", 3, **kwargs)
    with pytest.raises(HyenaDNAError, match="max_new_tokens"):
        model.generate("ACGT", -1)
    assert model.generate("ACGT", 0) == ""  # zero new bases is a valid request from Python


def test_smallest_temperature_is_finite_and_greedy():
    """Finding 1: logits are shifted before the division, so the smallest temperature allowed
    gives a finite (here one-hot) distribution, not NaN; and the model samples with it."""
    logits = torch.full((1, 16), -50.0)
    logits[0, BASE_IDS] = torch.tensor([2.0, 1.99, -3.0, 40.0])
    probs = next_base_probs(logits, temperature=1e-4)
    assert torch.isfinite(probs).all() and probs[0].tolist() == [0.0, 0.0, 0.0, 1.0]
    bases = tiny().generate(["ACGT"] * 3, 4, temperature=1e-4, seed=2**63 - 1, batch_size=2)
    assert all(len(b) == 4 for b in bases)


def test_non_finite_logits_mid_generation_are_refused(monkeypatch):
    """Logits that turn NaN after the prompt (an overflow in a low-precision dtype) stop the run
    with one error, found without a device sync per step; a finite run is unchanged."""
    from hyenadna.inference import generation

    model = tiny()
    straight = model.generate(["ACGT", "GGCA"], 5, seed=3)
    real_step = generation.IncrementalDecoder.step
    monkeypatch.setattr(generation.IncrementalDecoder, "step",
                        lambda self, ids: real_step(self, ids) * float("nan"))  # fmt: skip
    with pytest.raises(HyenaDNAError, match="NaN or infinite next-base logits"):
        model.generate(["ACGT", "GGCA"], 5, seed=3)
    monkeypatch.undo()
    assert model.generate(["ACGT", "GGCA"], 5, seed=3) == straight

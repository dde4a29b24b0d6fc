"""Issue 32, round 3 review: the messages a refused run prints must be one true line, and a bug
of ours must still show its traceback."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

import pytest
import torch
from cli_errors import error_line

from hyenadna import HyenaConfig, HyenaDNA, cli
from hyenadna.checks import values as validate
from hyenadna.cli import main
from hyenadna.cli.option_errors import causes
from hyenadna.data.genome import Genome
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.generation import generate
from hyenadna.pipelines.finetune import run_finetune
from hyenadna.pipelines.pretrain import run_pretrain
from hyenadna.training.options import LabelledData, PretrainData, TrainerOptions
from hyenadna.training.trainer import build_trainer, resume_checkpoint

# -- a command of our own, to see what main() does with what a run or its options raise ------------


@dataclass
class Knob:
    """A group of options whose construction fails on purpose.

    Attributes:
        n: 0 divides by zero, 2 reads an attribute of None (bugs); 3 raises our error.
    """

    n: int = 1

    def __post_init__(self) -> None:
        if self.n == 0:
            print(1 / self.n)
        if self.n == 2:
            print(getattr(None, "x"))  # noqa: B009 (the AttributeError is the point)
        if self.n == 3:
            raise HyenaDNAError("knob n must not be 3")


def run_probe(knob: Knob = Knob(), spare: Knob | None = None, stop: str = "") -> dict:  # noqa: B008
    """Probe.

    Args:
        knob: a group.
        spare: an optional group.
        stop: raise KeyboardInterrupt with this text ("-": none).
    """
    if stop:
        raise KeyboardInterrupt(*(() if stop == "-" else (stop,)))
    return {}


@pytest.fixture
def probe(monkeypatch):
    """``hyenadna probe ...`` runs :func:`run_probe`."""
    real = cli.command
    monkeypatch.setitem(cli.COMMANDS, "probe", "tests:run_probe")
    monkeypatch.setattr(cli, "command", lambda name: run_probe if name == "probe" else real(name))


def chain(exc: BaseException) -> list[type]:
    return [type(e) for e in causes(exc)]


# -- findings ------------------------------------------------------------------------------------


def test_bad_trainer_settings_are_one_line(tmp_path):
    """Finding 1: --trainer.precision bogus (and other settings Lightning refuses) escaped
    L.Trainer(...) as a ValueError traceback."""
    for options, words in [
        (TrainerOptions(accelerator="cpu", precision="bogus"), "Precision 'bogus' is invalid"),
        (TrainerOptions(accelerator="cpu", strategy="bogus"), "strategy='bogus'"),
        (TrainerOptions(accelerator="bogus"), "accelerator='bogus'"),
    ]:
        with pytest.raises(HyenaDNAError, match="^--trainer options: ") as refused:
            build_trainer(options, tmp_path / "run", [])
        assert words in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70])
def test_a_seed_out_of_range_is_refused_first(tmp_path, seed):
    """Finding 2: pretrain/finetune --seed outside 0..2**32-1 crashed in seed_everything; it is
    refused before anything else (here: before the missing genomes / training data)."""
    with pytest.raises(HyenaDNAError, match=rf"^--seed must lie in 0..4294967295, got {seed}$"):
        run_pretrain(PretrainData(), output=str(tmp_path / "p"), seed=seed)
    with pytest.raises(HyenaDNAError, match=rf"^--seed must lie in 0..4294967295, got {seed}$"):
        run_finetune(LabelledData(), output=str(tmp_path / "f"), seed=seed)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("stop", "line"), [("signal 15", "hyenadna: stopped by signal 15"), ("-", "hyenadna: stopped")]
)
def test_a_stopped_run_exits_130_without_a_traceback(probe, capsys, stop, line):
    """Finding 3: SIGTERM (turned into KeyboardInterrupt) or Ctrl-C printed a KeyboardInterrupt
    traceback after our note of what was kept."""
    with pytest.raises(SystemExit) as stopped:
        main(["probe", "--stop", stop])
    assert stopped.value.code == 130
    assert capsys.readouterr().err.strip() == line


def test_range_messages_state_the_numbers_exactly():
    """Finding 4: numbers were printed with :g ("must lie in 0..9.22337e+18, got 9.22337e+18");
    one-sided bounds now read "at least" / "at most"."""
    cases = [
        (lambda: validate.integer("--seed", 2**63, 0, 2**63 - 1),
         "--seed must lie in 0..9223372036854775807, got 9223372036854775808"),
        (lambda: validate.integer("--top", 0, 1), "--top must be at least 1, got 0"),
        (lambda: validate.integer("--k", 7, None, 4), "--k must be at most 4, got 7"),
        (lambda: validate.number("--q", 1.0000001, 0, 1), "--q must lie in 0..1, got 1.0000001"),
        (lambda: validate.number("--q", 0.1 + 0.2, None, 0.3), "--q must be at most 0.3, got 0.30000000000000004"),
        (lambda: validate.number("--lr", -1.0, 0, open_low=True), "--lr must be greater than 0, got -1"),
        (lambda: validate.positive("--batch_size", 0), "--batch_size must be positive, got 0"),
    ]  # fmt: skip
    for call, message in cases:
        with pytest.raises(HyenaDNAError) as refused:
            call()
        assert str(refused.value) == message


def test_a_group_given_one_value_says_it_is_a_group(capsys, tmp_path):
    """Finding 5: --tiling 100 read "expected dot import path string", YAML tiling: 100 "a class
    path (str)", YAML input: 5 "functools.partial(...) argument after ** must be a mapping",
    --input 5 'Parser key "input": Unable to load config'."""
    fasta = tmp_path / "a.fa"
    fasta.write_text(">a\nACGT\n")
    base = ["embed", "--model", "tiny-1k", "--output", str(tmp_path / "e.h5")]
    tiling = "--tiling: expected a group of options such as --tiling.window N"
    group = "--input: expected a group of options such as --input.fasta"
    assert f"{tiling} (a mapping in YAML), got 100" in error_line(capsys, [*base, "--input.fasta", str(fasta),
                                                                         "--tiling", "100"])  # fmt: skip
    (tmp_path / "t.yaml").write_text("tiling: 100\n")
    assert f"{tiling} (a mapping in YAML), got 100" in error_line(
        capsys, [*base, "--input.fasta", str(fasta), "--config", str(tmp_path / "t.yaml")]
    )
    for text, got in [("input: 5\n", "5"), ("input: [1, 2]\n", "[1, 2]"), (f"input: {fasta}\n", str(fasta))]:
        (tmp_path / "i.yaml").write_text(text)
        assert f"{group} ... (a mapping in YAML), got {got}" in error_line(
            capsys, [*base, "--config", str(tmp_path / "i.yaml")]
        )
    assert f"{group} ... (a mapping in YAML), got 5" in error_line(capsys, [*base, "--input", "5"])
    assert "--trainer: expected a group of options such as --trainer.max_steps N" in error_line(
        capsys, ["finetune", "--data.train", str(fasta), "--trainer", "3"]
    )
    assert "--data.genomes: expected a list of groups of options such as [{path: ...}]" in error_line(
        capsys, ["pretrain", "--data.genomes", "[5]"]
    )
    # what read well already still does: a value of an option inside the group, an unknown member
    assert "--input.fasta: expected str. Got value: 3" in error_line(capsys, [*base, "--input", '{"fasta": 3}'])
    assert "--tiling: Option 'bogus' is not accepted" in error_line(
        capsys, [*base, "--input.fasta", str(fasta), "--tiling", '{"window": 10, "bogus": 3}']
    )
    assert not (tmp_path / "e.h5").exists()


def test_max_new_tokens_must_leave_room_for_a_prompt():
    """Finding 6: generate --max_new_tokens 5000 on a 1k model said "takes prompts of 1 to -3,974"."""
    model = HyenaDNA(HyenaConfig(d_model=16, n_layer=1, l_max=64, filter_order=8))
    for new in (64, 5000):
        with pytest.raises(HyenaDNAError) as refused:
            generate(model, "ACGT", max_new_tokens=new)
        assert str(refused.value) == (
            f"max_new_tokens {new:,} leaves no room for a prompt: prompt plus new bases must fit the model's "
            "l_max 64 (at most 63 new bases after a 1-base prompt)"
        )


class _RunsCode:
    """Unpickling this calls os.system."""

    def __reduce__(self):
        return (os.system, ("true",))


def test_a_refused_checkpoint_does_not_relay_torchs_advice(tmp_path):
    """Finding 7: the --resume refusal quoted torch's "use torch.serialization.add_safe_globals([...])"
    (how to run the code it refused)."""
    for name, payload in [("code.ckpt", _RunsCode()), ("path.ckpt", pathlib.PurePosixPath("x"))]:
        path = tmp_path / name
        torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": payload}, path)
        with pytest.raises(HyenaDNAError) as refused:
            resume_checkpoint(tmp_path, str(path))
        message = str(refused.value)
        assert message.startswith(f"cannot resume: {path} was refused because it holds ")
        assert "which a checkpoint of ours never holds (a pickle that could run code)" in message
        assert "system" in message if name == "code.ckpt" else "pathlib.PurePosixPath" in message
        for advice in ("add_safe_globals", "safe_globals", "weights_only", "trust"):
            assert advice not in message


def test_a_region_that_ends_before_it_starts_says_so(tmp_path):
    """Finding 8: chr1:50-10 was reported as "not within chr1"."""
    (tmp_path / "g.fa").write_text(">chr1\n" + "ACGT" * 50 + "\n")
    genome = Genome(tmp_path / "g.fa")
    with pytest.raises(HyenaDNAError, match=r"region 'chr1:50-10': start 50 is after end 10$"):
        genome.region("chr1:50-10")
    with pytest.raises(HyenaDNAError, match=r"is not within chr1 \(length 200\)"):
        genome.region("chr1:150-250")


def test_a_bug_in_building_the_options_keeps_its_traceback(probe, capsys):
    """Finding 9: any ValueError/TypeError from building the options' dataclasses was reported as
    an option error, hiding a bug; only our own errors and the parser's own checks are."""
    with pytest.raises(ZeroDivisionError):
        main(["probe", "--knob.n", "0"])
    with pytest.raises(AttributeError):
        main(["probe", "--knob.n", "2"])
    with pytest.raises(ValueError) as wrapped:  # jsonargparse wraps an optional group's failure
        main(["probe", "--spare.n", "0"])
    assert ZeroDivisionError in chain(wrapped.value)
    assert (
        error_line(capsys, ["probe", "--knob.n", "3"])
        == "hyenadna: error: knob n must not be 3 (see hyenadna probe --help)"
    )
    assert "knob n must not be 3" in error_line(capsys, ["probe", "--spare.n", "3"])
    assert "--knob.n: expected int" in error_line(capsys, ["probe", "--knob.n", "x"])
    main(["probe", "--knob.n", "1"])
    assert capsys.readouterr().out.strip() == "{}"


def test_a_yaml_syntax_error_names_the_config_file(tmp_path, capsys):
    config = tmp_path / "recipe.yaml"
    config.write_text("model: tiny-1k\noutput: [unclosed\n")
    message = error_line(capsys, ["embed", "--config", str(config)])
    assert f"in {config}, line 2" in message and "<unicode string>" not in message

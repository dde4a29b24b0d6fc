"""The chunk folder behind resumable and multi-process inference (hyenadna.inference.sharding),
and ``predict`` stopped and resumed, in one process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.task_model import SequenceModel
from hyenadna.inference.sharding import ChunkFolder, Processes, Rank, chunked, launch

TF = Path(__file__).resolve().parents[2] / "data" / "tf_binding"
TEST = {"Oct4": str(TF / "oct4_test.fa"), "MafK": str(TF / "mafk_test.fa")}


def ranks(world: int) -> list[Rank]:
    return [Rank(r, world, "cpu", lambda: None) for r in range(world)]


def test_chunks_go_round_robin_and_merge_in_input_order(tmp_path):
    out = tmp_path / "out.txt"
    # made in turn here (the barriers are no-ops): rank 0, which creates the folder, last
    folders = [ChunkFolder(out, rank, {"a": 1}, ".txt", resume=False, overwrite=False) for rank in ranks(3)[::-1]][::-1]
    owned = {}
    for folder in reversed(folders):  # the order ranks finish in does not matter
        for k, items in folder.owned(chunked(range(10), 3)):
            owned[k] = folder.rank.rank
            folder.write(k, lambda tmp, items=items: Path(tmp).write_text("".join(f"{i}\n" for i in items)))
    assert owned == {0: 0, 1: 1, 2: 2, 3: 0}
    assert not folders[1].merge(lambda paths, tmp: None)  # only rank 0 merges
    assert folders[0].merge(lambda paths, tmp: Path(tmp).write_text("".join(p.read_text() for p in paths)))
    assert out.read_text().split() == [str(i) for i in range(10)]
    assert not (tmp_path / "out.txt.parts").exists()


def test_a_stopped_folder_needs_resume_and_the_same_settings(tmp_path):
    out = tmp_path / "out.txt"
    (rank,) = ranks(1)
    folder = ChunkFolder(out, rank, {"chunk": 4}, ".txt", resume=False, overwrite=False)
    for k, _ in folder.owned(chunked(range(8), 4)):
        folder.write(k, lambda tmp: Path(tmp).write_text("x\n"))
        break
    with pytest.raises(HyenaDNAError, match="left from a stopped run; pass --resume"):
        ChunkFolder(out, rank, {"chunk": 4}, ".txt", resume=False, overwrite=False)
    with pytest.raises(HyenaDNAError, match=r"cannot resume, its chunk \(was 4, now 8\) differ"):
        ChunkFolder(out, rank, {"chunk": 8}, ".txt", resume=True, overwrite=False)
    again = ChunkFolder(out, rank, {"chunk": 4}, ".txt", resume=True, overwrite=False)
    assert [k for k, _ in again.owned(chunked(range(8), 4))] == [1]  # chunk 0 is kept


def test_an_existing_output_needs_overwrite_and_an_empty_input_is_refused(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    (rank,) = ranks(1)
    with pytest.raises(HyenaDNAError, match="exists; pass overwrite"):
        ChunkFolder(out, rank, {}, ".txt", resume=False, overwrite=False)
    folder = ChunkFolder(out, rank, {}, ".txt", resume=False, overwrite=True)
    list(folder.owned(chunked([], 4)))
    with pytest.raises(HyenaDNAError, match="no records"):
        folder.merge(lambda paths, tmp: None)


def test_one_process_needs_no_launch():
    assert launch(None) is None and launch(Processes(devices=1)) is None
    with pytest.raises(HyenaDNAError, match="must be positive"):
        launch(Processes(devices=0))
    with pytest.raises(HyenaDNAError, match="cannot start the processes of .*invalid strategy"):
        launch(Processes(accelerator="cpu", devices=2, strategy="nonsense"))


def test_predict_stopped_on_a_chunk_resumes_to_the_straight_run(tmp_path, monkeypatch):
    import hyenadna.pipelines.predict as predict

    torch.manual_seed(0)
    model = SequenceModel(HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=1024, filter_order=16)),
                          HeadConfig("multiclass", ["Oct4", "MafK"]))  # fmt: skip
    torch.nn.init.normal_(model.head.weight, std=1.0)
    model.save_pretrained(tmp_path / "model")
    straight = tmp_path / "straight.tsv"
    predict.run_predict(str(tmp_path / "model"), TEST, str(straight), chunk=64, progress=False)
    real, calls = predict.predict_sequences, []

    def stopped_on_the_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(predict, "predict_sequences", stopped_on_the_third_chunk)
    out = tmp_path / "out.tsv"
    with pytest.raises(KeyboardInterrupt):
        predict.run_predict(str(tmp_path / "model"), TEST, str(out), chunk=64, progress=False)
    assert not out.exists() and len(list((tmp_path / "out.tsv.parts").glob("chunk*.tsv"))) == 2
    with pytest.raises(HyenaDNAError, match="--resume"):
        predict.run_predict(str(tmp_path / "model"), TEST, str(out), chunk=64, progress=False)
    summary = predict.run_predict(str(tmp_path / "model"), TEST, str(out), chunk=64, progress=False, resume=True)
    assert summary["rows"] == 200 and len(calls) == 3 + 2  # only the two missing chunks computed
    assert out.read_text() == straight.read_text()
    rows = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    assert np.allclose([float(r[2]) + float(r[3]) for r in rows], 1.0, atol=1e-5)


def test_score_of_fasta_records_is_not_spread(tmp_path):
    from hyenadna.pipelines.score import run_score

    with pytest.raises(HyenaDNAError, match="--fasta runs in one process"):
        run_score(str(tmp_path / "out.tsv"), model="tiny-1k", fasta=str(TF / "oct4_test.fa"),
                  trainer=Processes(devices=2))  # fmt: skip


def test_loss_shares_batches_between_ranks_and_sums_them(tmp_path):
    from hyenadna.analysis.lm_loss import fasta_lm_loss

    torch.manual_seed(0)
    model = HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=1024, filter_order=16)).eval()
    fasta = TF / "oct4_test.fa"
    whole = fasta_lm_loss(model, fasta, window=64, batch_size=2)
    shares = [fasta_lm_loss(model, fasta, window=64, batch_size=2, rank=rank) for rank in ranks(3)]
    assert all(0 < sum(r.scored for r in share) < sum(r.scored for r in whole) for share in shares)
    for k, record in enumerate(whole):
        parts = [share[k] for share in shares]
        assert sum(p.scored for p in parts) == record.scored and {p.bases for p in parts} == {record.bases}
        nats = sum(p.nats_per_base * p.scored for p in parts if p.scored) / record.scored
        assert nats == pytest.approx(record.nats_per_base, rel=1e-12)


def test_a_chunk_of_zero_records_is_refused_by_every_chunked_command(tmp_path):
    from hyenadna.pipelines.explain import run_explain
    from hyenadna.pipelines.predict import run_predict
    from hyenadna.pipelines.score import run_score_vcf

    model = HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=1024, filter_order=16)).eval()
    vcf = "/usr/share/doc/vt/examples/normalize/01_IN.vcf.gz"
    calls = [
        lambda: run_score_vcf(model, vcf, str(TF / "oct4_test.fa"), str(tmp_path / "s.tsv"), 64, chunk=0),
        lambda: run_explain("tiny-1k", str(TF / "oct4_test.fa"), str(tmp_path / "e.h5"), chunk=0),
        lambda: run_predict("no-model-needed", str(TF / "oct4_test.fa"), str(tmp_path / "p.tsv"), chunk=0),
    ]
    for call in calls:
        with pytest.raises(HyenaDNAError, match="chunk must be positive, got 0"):
            call()
    assert not list(tmp_path.iterdir())

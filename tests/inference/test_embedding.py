"""Pooling, reverse-complement batches, model.embed, heads, the sklearn transformer and optimiser groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.analysis.kmer_baseline import kmer_features
from hyenadna.data.tokenizer import CharacterTokenizer, pad_ids, reverse_complement
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.task_model import SequenceModel
from hyenadna.modules.pooling import pool, reverse_complement_batch
from hyenadna.training.optim import OptimOptions, head_groups, parameter_groups, warmup_cosine

TOK = CharacterTokenizer()


def small_model(seed: int = 0, **overrides) -> HyenaDNA:
    torch.manual_seed(seed)
    config = HyenaConfig(d_model=32, n_layer=2, l_max=600, filter_order=16, **overrides)
    return HyenaDNA(config).eval()


def random_seqs(rng, lengths) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), size=n)) for n in lengths]


def test_pooling_ignores_padding_on_either_side():
    rng = np.random.default_rng()
    rows = [rng.integers(7, 11, size=n) for n in (5, 2, 7)]
    hidden_by_row = [torch.randn(n, 4, dtype=torch.float64) for n in (5, 2, 7)]
    for side in ("left", "right"):
        batch = pad_ids(rows, side)
        hidden = torch.zeros(3, 7, 4, dtype=torch.float64)
        for i, h in enumerate(hidden_by_row):
            hidden[i, -len(h) :] = h if side == "left" else 0
            if side == "right":
                hidden[i, : len(h)] = h
        mask = batch["attention_mask"]
        assert torch.allclose(pool(hidden, mask, "mean"), torch.stack([h.mean(0) for h in hidden_by_row]))
        assert torch.allclose(pool(hidden, mask, "max"), torch.stack([h.max(0).values for h in hidden_by_row]))
        assert torch.equal(pool(hidden, mask, "first"), torch.stack([h[0] for h in hidden_by_row]))
        assert torch.equal(pool(hidden, mask, "last"), torch.stack([h[-1] for h in hidden_by_row]))
        # the middle real token; of an even count (the row of 2), the right of the two: index L // 2
        assert torch.equal(pool(hidden, mask, "center"), torch.stack([h[len(h) // 2] for h in hidden_by_row]))
    with pytest.raises(HyenaDNAError, match="pooling must be one of"):
        pool(hidden, mask, "median")


def test_reverse_complement_batch_keeps_padding_in_place():
    seqs = ["ACGGT", "TTAC", "G"]
    for side in ("left", "right"):
        batch = pad_ids([TOK.encode_bases(s) for s in seqs], side)
        flipped = reverse_complement_batch(batch["input_ids"], batch["attention_mask"])
        expected = pad_ids([TOK.encode_bases(reverse_complement(s)) for s in seqs], side)["input_ids"]
        assert torch.equal(flipped, expected)


def test_embed_does_not_depend_on_batching():
    model = small_model()
    seqs = random_seqs(np.random.default_rng(), [37, 300, 5, 599, 120, 1])
    together = model.embed(seqs, batch_size=6)
    alone = np.stack([model.embed(s, batch_size=1)[0] for s in seqs])
    assert together.shape == (6, 32) and together.dtype == np.float32
    assert np.abs(together - alone).max() <= 1e-5 * np.abs(alone).max()
    assert model.training is False


def test_embed_matches_hidden_states_and_rc_average():
    model = small_model(1)
    seqs = random_seqs(np.random.default_rng(), [50, 80])
    per_token = model.embed(seqs, pooling="none", layer=1)
    for seq, states in zip(seqs, per_token):
        direct = model.hidden_states(TOK.encode(seq)[None], layer=1)[0].detach().numpy()
        assert states.shape == (len(seq), 32)
        assert np.abs(states - direct).max() <= 1e-5 * np.abs(direct).max()
    both = model.embed(seqs, pooling="last", rc_average=True)
    fwd = model.embed(seqs, pooling="last")
    rev = model.embed([reverse_complement(s) for s in seqs], pooling="last")
    assert np.allclose(both, (fwd + rev) / 2, atol=1e-6)


def test_embed_rejects_bad_input():
    model = small_model()
    with pytest.raises(HyenaDNAError, match="sequence 1 has 601 bases; the model takes 1 to 600"):
        model.embed(["ACGT", "A" * 601])
    with pytest.raises(HyenaDNAError, match="unknown character 'X' at position 2 in sequence 0"):
        model.embed(["ACXT"])
    with pytest.raises(HyenaDNAError, match="layer 5 out of range"):
        model.embed(["ACGT"], layer=5)


def test_sequence_model_rc_conjoin_is_strand_symmetric_and_round_trips(tmp_path):
    backbone = small_model(2)
    head = HeadConfig(task="multiclass", labels=["neg", "pos"], pooling="mean", rc_conjoin=True, dropout=0.0)
    model = SequenceModel(backbone, head).eval()
    seqs = random_seqs(np.random.default_rng(), [40, 25])
    batch = TOK.batch_encode(seqs, padding_side="right")
    rc_batch = TOK.batch_encode([reverse_complement(s) for s in seqs], padding_side="right")
    with torch.no_grad():
        logits = model(**batch)
        assert torch.allclose(logits, model(**rc_batch), atol=1e-5)
    model.save_pretrained(tmp_path / "ft")
    loaded = SequenceModel.from_pretrained(tmp_path / "ft").eval()
    assert loaded.head_config == head
    with torch.no_grad():
        assert torch.equal(loaded(**batch), logits)
    plain = HyenaDNA.from_pretrained(tmp_path / "ft")  # the backbone alone still loads
    assert torch.equal(plain.token_embedding.weight, backbone.token_embedding.weight)
    with pytest.raises(HyenaDNAError, match="no task.json"):
        SequenceModel.from_pretrained(tmp_path / "nothing")


def test_sklearn_pipeline_with_the_embedder():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from hyenadna.heads.sklearn import HyenaDNAEmbedder

    rng = np.random.default_rng(0)
    gc_rich = ["".join(rng.choice(list("GGGCCCAT"), size=60)) for _ in range(20)]
    at_rich = ["".join(rng.choice(list("AAATTTGC"), size=60)) for _ in range(20)]
    X, y = gc_rich + at_rich, [1] * 20 + [0] * 20
    clf = make_pipeline(HyenaDNAEmbedder("tiny-1k", batch_size=8), LogisticRegression(max_iter=1000))
    clf.fit(X, y)
    assert clf.score(X, y) > 0.9
    features = clf[0].transform(X[:3])
    assert features.shape == (3, 128) and len(clf[0].get_feature_names_out()) == 128


def test_weight_decay_groups_follow_the_reference():
    model = small_model()
    decay, no_decay = parameter_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay}
    assert "blocks.0.mixer.in_proj.weight" in decayed and "blocks.1.mlp.fc2.weight" in decayed
    assert "blocks.0.mixer.short_conv.weight" in decayed
    kept = {names[id(p)] for p in no_decay}
    assert {"blocks.0.mixer.filter.freq", "blocks.0.mixer.filter.mlp.0.weight", "blocks.0.mixer.d_skip"} <= kept
    assert {"token_embedding.weight", "final_norm.weight", "blocks.0.mixer.in_proj.bias"} <= kept
    assert len(decay) + len(no_decay) == len(list(model.parameters()))


@pytest.mark.parametrize("kind", ["linear", "positional", "conv"])
def test_a_heads_norms_do_not_decay_and_the_rest_of_it_does(kind):
    """A head is one decayed group, as heads always were; the conv head's batch norms (and only
    they) form a second group without decay, as the backbone's norms have."""
    head = SequenceModel(small_model(), HeadConfig("multiclass", ["a", "b"], kind=kind, train_length=16, hidden=4)).head
    groups = head_groups(head, OptimOptions(lr=2e-3, weight_decay=0.05))
    names = {id(p): n for n, p in head.named_parameters()}
    assert [g["weight_decay"] for g in groups] == ([0.05, 0.0] if kind == "conv" else [0.05])
    assert all(g["lr"] == 2e-3 for g in groups)
    if kind != "conv":  # one group in the head's own order: the optimiser state of earlier runs still fits
        assert [names[id(p)] for p in groups[0]["params"]] == [n for n, _ in head.named_parameters()]
    if kind == "conv":
        assert sorted(names[id(p)] for p in groups[1]["params"]) == sorted(
            f"blocks.{i}.{k}" for i in (1, 5, 9) for k in ("bias", "weight")
        )
        assert {"blocks.0.weight", "blocks.0.bias", "weight", "bias"} <= {names[id(p)] for p in groups[0]["params"]}


def test_warmup_cosine_schedule():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = warmup_cosine(opt, OptimOptions(lr=1.0, warmup_steps=4, min_lr_ratio=0.1), total_steps=14)
    lrs = []
    for _ in range(15):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert lrs[14] == pytest.approx(0.1)


def test_kmer_features_count_both_strands():
    feats = kmer_features(["AAAC"], ks=(2,), canonical=True)
    # forward AA, AA, AC; reverse complement GTTT: GT, TT, TT -> 6 k-mers
    order = ["".join((a, b)) for a in "ACGT" for b in "ACGT"]
    expected = {"AA": 2, "AC": 1, "GT": 1, "TT": 2}
    assert np.allclose(feats[0], [expected.get(k, 0) / 6 for k in order])

"""The conv head (a small CNN on the backbone's states) against a plain numpy reference: padding
on either side, shorter inputs, both strands; its length limit, saving, refusals, and training
mode (batch statistics) against eval mode (running statistics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from head_states import head_states

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.data.tokenizer import CharacterTokenizer
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadConfig, HeadOptions
from hyenadna.heads.task_model import SequenceModel

SEQS = ["ACGTTGCAAGGT", "TTGACCANGTACGATCGA", "GCGCAT", "ATATATCGCGNNATGG"]
LENGTH, CHANNELS, KERNEL = 23, [5, 3], 3  # 23 -> 11 -> 5: pooling drops an odd last position


def conv_model(bidirectional: bool = False, hidden: int = 0) -> SequenceModel:
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig(d_model=8, n_layer=2, l_max=32, residual_in_fp32=False))
    head = HeadConfig(
        "multiclass", ["a", "b", "c"], kind="conv", train_length=LENGTH, bidirectional=bidirectional,
        hidden=hidden, conv_channels=CHANNELS, conv_kernel=KERNEL, dropout=0.0,
    )  # fmt: skip
    model = SequenceModel(backbone, head)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # running statistics and affine weights far from their identity start
        for name, value in model.head.named_buffers():
            if "running" in name:
                value.copy_(torch.rand(value.shape, generator=generator) + (0.5 if "var" in name else -0.5))
        for value in model.head.parameters():
            value.copy_(torch.randn(value.shape, generator=generator) * 0.5)
    return model.double().eval()


def reference_logits(model: SequenceModel, seq: str) -> np.ndarray:
    """Zero-filled states (length x width) through each block written out: a 'same' convolution,
    batch norm with the running statistics, ReLU, max over pairs; then flatten and the output."""
    states = head_states(model, seq)
    x = np.zeros((states.shape[1], LENGTH))
    x[:, : len(seq)] = states.T
    weights = {k: v.detach().double().numpy() for k, v in model.head.state_dict().items()}
    for block in range(len(CHANNELS)):
        w, b = weights[f"blocks.{4 * block}.weight"], weights[f"blocks.{4 * block}.bias"]
        padded = np.pad(x, ((0, 0), (KERNEL // 2, KERNEL // 2)))
        conv = np.stack([np.einsum("oik,ik->o", w, padded[:, i : i + KERNEL]) for i in range(x.shape[1])], 1)
        conv += b[:, None]
        norm = f"blocks.{4 * block + 1}."
        scale = weights[norm + "weight"] / np.sqrt(weights[norm + "running_var"] + 1e-5)
        shift = weights[norm + "bias"] - weights[norm + "running_mean"] * scale
        y = np.maximum(conv * scale[:, None] + shift[:, None], 0)
        x = y[:, : y.shape[1] // 2 * 2].reshape(y.shape[0], -1, 2).max(-1)
    flat = x.reshape(-1)
    if model.head_config.hidden:
        pre = weights["hidden_layer.weight"] @ flat + weights["hidden_layer.bias"]
        flat = torch.nn.functional.gelu(torch.as_tensor(pre)).numpy()
    return weights["weight"] @ flat + weights["bias"]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_logits_are_a_cnn_on_the_states_from_the_first_base(side, bidirectional):
    model = conv_model(bidirectional=bidirectional, hidden=4)
    batch = CharacterTokenizer(padding_side=side)(SEQS)
    with torch.no_grad():
        logits = model(**batch).numpy()
    expected = np.stack([reference_logits(model, seq) for seq in SEQS])
    np.testing.assert_allclose(logits, expected, rtol=1e-9, atol=1e-11)


def test_training_normalises_by_the_batch_and_updates_the_running_statistics():
    model = conv_model().train()
    batch = CharacterTokenizer()(SEQS)
    before = model.head.blocks[1].running_mean.clone()
    with torch.no_grad():
        train_logits = model(**batch)
    assert not torch.equal(model.head.blocks[1].running_mean, before)
    with torch.no_grad():
        assert not torch.allclose(train_logits, model.eval()(**batch))


def test_it_saves_and_reloads_bit_for_bit(tmp_path):
    model = conv_model(bidirectional=True)
    model.save_pretrained(tmp_path)
    loaded = SequenceModel.from_pretrained(tmp_path).double().eval()
    assert loaded.head_config.conv_channels == CHANNELS and loaded.head_config.conv_kernel == KERNEL
    batch = CharacterTokenizer()(SEQS)
    with torch.no_grad():
        assert torch.equal(loaded(**batch), model(**batch))


def test_longer_inputs_and_bad_shapes_are_refused():
    model = conv_model()
    with pytest.raises(HyenaDNAError, match="longer than the 23 the head reads"):
        model(**CharacterTokenizer()(["ACGT" * 6]))
    backbone = model.backbone
    with pytest.raises(HyenaDNAError, match="pool a 3-token input to nothing"):
        SequenceModel(backbone, HeadConfig("multiclass", ["a", "b"], kind="conv", train_length=3))
    with pytest.raises(HyenaDNAError, match="train_length in"):
        SequenceModel(backbone, HeadConfig("multiclass", ["a", "b"], kind="conv"))
    with pytest.raises(HyenaDNAError, match="--head.conv_channels must be a non-empty list"):
        HeadOptions(kind="conv", conv_channels=[])
    with pytest.raises(HyenaDNAError, match="conv_kernel must be"):
        HeadConfig("multiclass", ["a"], kind="conv", conv_kernel=0)
    with pytest.raises(HyenaDNAError, match="conv_kernel must be odd"):
        HeadOptions(kind="conv", conv_kernel=4)
    with pytest.raises(HyenaDNAError, match="conv_channels must be a whole number"):
        HeadConfig("multiclass", ["a"], kind="conv", conv_channels=[8, 2.5])

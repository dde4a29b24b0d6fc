from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from hyena_reference import make_released_state, max_relative_error, reference_hidden_states, released_config
from released_folders import write_released

import hyenadna
from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.io.safe_pickle import safe_torch_load


def check_against_reference(model: HyenaDNA, state: dict, config: dict, shift: float = 0.0) -> list[float]:
    torch.manual_seed(5)
    ids = torch.randint(0, 12, (2, config["layer"]["l_max"] - 3))
    with torch.no_grad():
        ours = model.eval().all_hidden_states(ids)
    expected = reference_hidden_states(state, config, ids, shift=shift)
    assert len(ours) == len(expected) == config["n_layer"] + 1
    errors = [max_relative_error(a, b) for a, b in zip(ours, expected)]
    assert max(errors) <= 1e-5, errors
    return errors


@pytest.mark.parametrize("wrap_layers", [True, False])
def test_released_checkpoint_matches_float64_reference_on_every_layer(tmp_path, wrap_layers):
    config = released_config(d_model=32, n_layer=3, l_max=203)
    state = make_released_state(config, seed=11, wrap_layers=wrap_layers)
    folder = write_released(tmp_path / "hyenadna-test", config, state)
    model = HyenaDNA.from_pretrained(folder)
    assert model.config.modulation_shift == 0.0 and not model.config.learn_pos_emb
    check_against_reference(model, state, config)


def test_released_order_3_and_learned_positional_embedding(tmp_path):
    config = released_config(d_model=16, n_layer=2, l_max=120, order=3, lr_pos_emb=1e-5)
    state = make_released_state(config, seed=12, learned_z=True)
    model = HyenaDNA.from_pretrained(write_released(tmp_path / "o3", config, state))
    assert model.config.order == 3 and model.config.learn_pos_emb
    check_against_reference(model, state, config)


def test_trained_positional_embedding_is_kept_even_when_config_says_frozen(tmp_path):
    config = released_config(l_max=90, lr_pos_emb=0.0)
    state = make_released_state(config, seed=13, learned_z=True)
    model = hyenadna.load(write_released(tmp_path / "z", config, state))
    assert model.config.store_pos_emb and not model.config.learn_pos_emb  # kept, not trained
    check_against_reference(model, state, config)


def test_hub_port_modulation_shift_override(tmp_path):
    config = released_config(l_max=90)
    state = make_released_state(config, seed=14)
    folder = write_released(tmp_path / "shift", config, state)
    model = hyenadna.load(folder, modulation_shift=0.05)
    check_against_reference(model, state, config, shift=0.05)
    check_against_reference(HyenaDNA.from_pretrained(folder, modulation_shift=0.05), state, config, shift=0.05)
    with pytest.raises(AssertionError):  # the shift changes the numbers: the test can fail
        check_against_reference(HyenaDNA.from_pretrained(folder), state, config, shift=0.05)


def test_released_import_rejects_inconsistent_checkpoints(tmp_path):
    config = released_config(l_max=90)
    state = make_released_state(config, seed=15)
    bad_freq = dict(state)
    key = "model.backbone.layers.0.mixer.layer.filter_fn.implicit_filter.3.freq"
    bad_freq[key] = state[key] + 1
    with pytest.raises(HyenaDNAError, match="implicit_filter.3.freq differs"):
        HyenaDNA.from_pretrained(write_released(tmp_path / "f", config, bad_freq))
    extra = {**state, "model.backbone.layers.0.mixer.layer.mystery.weight": torch.zeros(3)}
    with pytest.raises(HyenaDNAError, match="unexpected weight model.backbone.layers.0.mixer.mystery.weight"):
        HyenaDNA.from_pretrained(write_released(tmp_path / "x", config, extra))
    wrong_l_max = released_config(l_max=91)
    with pytest.raises(HyenaDNAError, match="differs from the value the config implies"):
        HyenaDNA.from_pretrained(write_released(tmp_path / "l", wrong_l_max, state))
    attention = {**config, "attn_layer_idx": [1]}
    with pytest.raises(HyenaDNAError, match="attention layers"):
        HyenaDNA.from_pretrained(write_released(tmp_path / "a", attention, state))


def test_our_format_round_trip(tmp_path):
    torch.manual_seed(4)
    model = HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=100, order=3, modulation_shift=0.05)).eval()
    model.save_pretrained(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]  # no temporary files left
    loaded = HyenaDNA.from_pretrained(tmp_path / "m").eval()
    assert loaded.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    ids = torch.randint(0, 12, (2, 77))
    with torch.no_grad():
        assert torch.equal(model(ids), loaded(ids))
    # a released checkpoint re-saved in our format gives the same numbers
    config = released_config(l_max=64)
    state = make_released_state(config, seed=16, learned_z=True)
    imported = HyenaDNA.from_pretrained(write_released(tmp_path / "r", config, state))
    imported.save_pretrained(tmp_path / "r2")
    check_against_reference(hyenadna.load(tmp_path / "r2"), state, config)


def test_config_json_round_trip_and_unknown_field(tmp_path):
    config = HyenaConfig.from_preset("small-32k", modulation_shift=0.05)
    config.save_json(tmp_path / "c.json")
    assert HyenaConfig.from_json(tmp_path / "c.json") == config
    (tmp_path / "bad.json").write_text(json.dumps({"d_model": 8, "dmodel": 9}))
    with pytest.raises(HyenaDNAError, match=r"bad.json: unknown HyenaConfig field\(s\) \['dmodel'\]"):
        HyenaConfig.from_json(tmp_path / "bad.json")


def test_missing_or_corrupt_files_are_named(tmp_path):
    with pytest.raises(HyenaDNAError, match="no model folder"):
        HyenaDNA.from_pretrained(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HyenaDNAError, match="holds neither model.safetensors"):
        HyenaDNA.from_pretrained(tmp_path / "empty")
    HyenaDNA(HyenaConfig(d_model=8, l_max=16, filter_order=8)).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(HyenaDNAError, match="model.safetensors: cannot read weights"):
        HyenaDNA.from_pretrained(tmp_path / "m")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "weights.ckpt").write_bytes(b"not a checkpoint")
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(released_config()))
    with pytest.raises(HyenaDNAError, match="weights.ckpt"):
        HyenaDNA.from_pretrained(tmp_path / "ckpt")


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    config = released_config(l_max=40)
    state = make_released_state(config, seed=17)
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    torch.save({"state_dict": state, "hyper_parameters": _Exploit(marker)}, folder / "weights.ckpt")
    with pytest.raises(HyenaDNAError, match=r"unsafe.*(posix|os)\.system"):
        HyenaDNA.from_pretrained(folder)
    assert not marker.exists()
    # the same refusal for a legacy (non-zip) pickle file
    with open(tmp_path / "legacy.pt", "wb") as fh:
        pickle.dump({"x": _Exploit(marker)}, fh, protocol=2)
    with pytest.raises(HyenaDNAError, match="unsafe"):
        safe_torch_load(tmp_path / "legacy.pt")
    assert not marker.exists()


def test_restricted_loader_keeps_omegaconf_inert(tmp_path):
    config = released_config(l_max=40)
    folder = write_released(tmp_path / "ok", config, make_released_state(config, seed=18))
    loaded = safe_torch_load(folder / "weights.ckpt")
    assert loaded["global_step"] == 1200
    assert type(loaded["hyper_parameters"]).__module__ == "hyenadna.io.safe_pickle"


def test_float64_model_matches_reference_exactly_even_for_ill_conditioned_weights(tmp_path):
    """In float64 the only differences left are float32 roundings of the stored buffers."""
    config = released_config(d_model=16, n_layer=2, l_max=100, order=3)
    state = make_released_state(config, seed=19, filter_scale=5.0, learned_z=True)
    model = HyenaDNA.from_pretrained(write_released(tmp_path / "f64", config, state)).double().eval()
    ids = torch.randint(0, 12, (3, 97))  # fresh each run
    with torch.no_grad():
        ours = model.all_hidden_states(ids)
    errors = [max_relative_error(a, b) for a, b in zip(ours, reference_hidden_states(state, config, ids))]
    assert max(errors) < 1e-5, errors

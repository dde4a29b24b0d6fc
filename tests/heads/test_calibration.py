"""Calibration on held-out data (hyenadna.heads.calibration): the fit against plain references
(scipy's optimiser on the same likelihood, scikit-learn's logistic regression for Platt scaling),
recovery of a known scale and bias, and the model folder's ``calibration.json`` for both the Hyena
and the CNN models, with bad files and bad held-out data refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import expit, log_softmax

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.calibration import CALIBRATION_FILE, Calibration, fit_calibration
from hyenadna.heads.cnn import ConvClassifier, ConvConfig
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.loading import calibrate_on, load_task_model, predict_sequences
from hyenadna.heads.task_model import SequenceModel

LABELS = ["acceptor", "donor", "neither"]
SEQS = ["".join(np.random.default_rng(i).choice(list("ACGT"), 16)) for i in range(30)]


def ranked_targets(model) -> np.ndarray:
    """Classes the model's logits rank, every class present, a third of them wrong."""
    raw = predict_sequences(model, SEQS, logits=True).astype(np.float64)
    targets = ((raw - raw.mean(0)) / raw.std(0)).argmax(1)
    targets[::3] = (targets[::3] + 1) % 3
    assert set(targets) == {0, 1, 2}
    return targets


def softmax_sample(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = np.exp(log_softmax(logits, axis=1))
    return np.array([rng.choice(len(row), p=row) for row in p])


def test_bcts_recovers_a_known_scale_and_class_shift():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(20000, 3))
    true_scale, true_bias = 0.5, np.array([-0.3, -0.3, 0.6])  # overconfident, and a class the data favour
    targets = softmax_sample(logits * true_scale + true_bias, rng)
    fitted = fit_calibration("multiclass", LABELS, logits, targets)
    assert fitted.scale[0] == pytest.approx(true_scale, abs=0.02)
    assert np.allclose(fitted.bias, true_bias, atol=0.05) and abs(sum(fitted.bias)) < 1e-12
    assert fitted.nll_after < fitted.nll_before and fitted.sequences == 20000 and fitted.method == "bcts"


def test_bcts_reaches_the_optimum_scipy_finds_on_the_same_likelihood():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=2.0, size=(500, 4))
    targets = rng.integers(0, 4, 500)
    targets[:200] = logits[:200].argmax(1)  # partly informative logits

    def nll(params: np.ndarray) -> float:
        z = logits * params[0] + np.r_[params[1:], 0.0]  # the last bias pinned: softmax's shift
        return -log_softmax(z, axis=1)[np.arange(len(z)), targets].mean()

    reference = minimize(nll, np.r_[1.0, np.zeros(3)], method="BFGS", options={"gtol": 1e-10})
    fitted = fit_calibration("multiclass", list("abcd"), logits, targets)
    assert fitted.nll_after == pytest.approx(reference.fun, rel=1e-9)
    ref_bias = np.r_[reference.x[1:], 0.0]
    assert fitted.scale[0] == pytest.approx(reference.x[0], rel=1e-5)
    assert np.allclose(fitted.bias, ref_bias - ref_bias.mean(), atol=1e-5)


def test_platt_scaling_per_label_matches_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    logits = rng.normal(scale=2.0, size=(2000, 2))
    targets = (rng.random((2000, 2)) < expit(logits * [0.7, 1.6] + [0.4, -1.0])).astype(float)
    fitted = fit_calibration("multilabel", ["x", "y"], logits, targets)
    assert fitted.method == "platt" and len(fitted.scale) == 2
    for j in range(2):
        reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(logits[:, [j]], targets[:, j])
        assert fitted.scale[j] == pytest.approx(reference.coef_[0, 0], rel=1e-5)
        assert fitted.bias[j] == pytest.approx(reference.intercept_[0], abs=1e-5)


def test_held_out_data_that_cannot_be_fitted_is_refused_by_name():
    logits = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(HyenaDNAError, match=r"every class.*\['neither'\]"):
        fit_calibration("multiclass", LABELS, logits, np.arange(30) % 2)
    with pytest.raises(HyenaDNAError, match=r"positives and negatives.*\['y'\]"):
        fit_calibration("multilabel", ["x", "y"], logits[:, :2], np.c_[np.arange(30) % 2, np.ones(30)])
    with pytest.raises(HyenaDNAError, match="not a regression head"):
        fit_calibration("regression", ["v"], logits[:, :1], np.zeros(30))
    bad = logits.copy()
    bad[4, 1] = np.nan
    with pytest.raises(HyenaDNAError, match="non-finite"):
        fit_calibration("multiclass", LABELS, bad, np.arange(30) % 3)
    with pytest.raises(HyenaDNAError, match=r"\(N, 3\) logits"):
        fit_calibration("multiclass", LABELS, logits[:, :2], np.arange(30) % 3)


def hyena_model() -> SequenceModel:
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig.from_preset("tiny-1k", n_layer=1, d_model=16, l_max=32))
    model = SequenceModel(backbone, HeadConfig("multiclass", LABELS, train_length=16, rc_conjoin=True))
    for weight in model.head.parameters():
        torch.nn.init.normal_(weight, std=0.5)
    return model.eval()


def cnn_model() -> ConvClassifier:
    torch.manual_seed(0)
    return ConvClassifier(ConvConfig(length=16, channels=[8]), HeadConfig("multiclass", LABELS)).eval()


@pytest.mark.parametrize("make", [hyena_model, cnn_model], ids=["hyena", "cnn"])
def test_a_calibrated_model_saves_reloads_and_predicts_through_its_calibration(make, tmp_path):
    model = make()
    raw = predict_sequences(model, SEQS, batch_size=3, logits=True).astype(np.float64)
    calibration = calibrate_on(model, SEQS, ranked_targets(model), batch_size=3)
    assert model.calibration is calibration
    expected = np.exp(log_softmax(raw * calibration.scale[0] + np.array(calibration.bias), axis=1))
    assert np.allclose(predict_sequences(model, SEQS, batch_size=3), expected, atol=1e-6)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    assert saved["labels"] == LABELS and saved["scale"] == calibration.scale and saved["bias"] == calibration.bias
    loaded = load_task_model(tmp_path)
    assert loaded.calibration == calibration
    assert np.array_equal(predict_sequences(loaded, SEQS, 3), predict_sequences(model, SEQS, 3))
    assert np.array_equal(predict_sequences(loaded, SEQS, 3, logits=True), raw.astype(np.float32))  # logits stay raw
    model.calibration = None  # saved over without one: no stale file for a later load to pick up
    model.save_pretrained(tmp_path)
    assert not (tmp_path / CALIBRATION_FILE).exists() and load_task_model(tmp_path).calibration is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scale": [-0.5]}, "scale must be positive"),
        ({"bias": [0.0, 1.0]}, "bias must be a list of 3 numbers"),
        ({"bias": [0.0, "x", 1.0]}, "finite numbers"),
        ({"labels": ["a", "b", "c"]}, r"fitted for a multiclass head with labels \['a', 'b', 'c'\]"),
        ({"task": "regression"}, "task must be one of"),
        ({"temperature": 2.0}, "not a valid calibration file"),
    ],
)
def test_a_bad_calibration_file_is_refused_naming_it(change, message, tmp_path):
    model = cnn_model()
    calibrate_on(model, SEQS, ranked_targets(model), batch_size=4)
    model.save_pretrained(tmp_path)
    path = tmp_path / CALIBRATION_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(HyenaDNAError, match=message) as error:
        load_task_model(tmp_path)
    assert str(path) in str(error.value)


def test_raw_logits_refuse_tiling_and_strand_averaging():
    from hyenadna.inference.tiling import Tiling

    with pytest.raises(HyenaDNAError, match="whole sequences only"):
        predict_sequences(cnn_model(), SEQS, logits=True, rc_average=True)
    with pytest.raises(HyenaDNAError, match="whole sequences only"):
        predict_sequences(cnn_model(), SEQS, logits=True, tiling=Tiling(window=8, stride=4))


def test_platt_scaling_names_a_label_the_logits_rank_the_wrong_way_round():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(400, 2))
    targets = np.c_[logits[:, 0] > 0, logits[:, 1] < 0].astype(float)  # label y: higher logit, fewer positives
    with pytest.raises(HyenaDNAError, match=r"rank labels \['y'\] the wrong way round"):
        fit_calibration("multilabel", ["x", "y"], logits, targets)


def test_a_multilabel_cnn_predicts_through_its_per_label_calibration(tmp_path):
    torch.manual_seed(0)
    model = ConvClassifier(ConvConfig(length=16, channels=[8]), HeadConfig("multilabel", ["x", "y"])).eval()
    raw = predict_sequences(model, SEQS, logits=True).astype(np.float64)
    targets = np.c_[raw[:, 0] > np.median(raw[:, 0]), raw[:, 1] > np.median(raw[:, 1])].astype(float)
    targets[::4] = 1 - targets[::4]
    calibration = calibrate_on(model, SEQS, targets)
    assert calibration.method == "platt" and len(calibration.scale) == 2
    expected = expit(raw * np.array(calibration.scale) + np.array(calibration.bias))
    model.save_pretrained(tmp_path)
    assert np.allclose(predict_sequences(load_task_model(tmp_path), SEQS), expected, atol=1e-6)


def test_bfloat16_logits_are_calibrated_in_float32():
    logits = np.random.default_rng(5).normal(size=(50, 3))
    calibration = Calibration("multiclass", LABELS, [0.37], [-1.23, 0.5, 0.73], 50, 1.0, 0.9)  # not bfloat16 values
    low = torch.tensor(logits).to(torch.bfloat16)
    out = calibration.apply(low)
    expected = low.double() * 0.37 + torch.tensor([-1.23, 0.5, 0.73], dtype=torch.float64)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), expected, rtol=1e-6, atol=1e-6)

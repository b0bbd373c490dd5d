"""The drift optimiser wrapper and loss scaler behave as fmtlab/drift/optimizer.py documents."""
import pytest
import torch

import fmtlab as fl
import fmtlab.torch as flt
from fmtlab.drift.optimizer import EmulatedOptimizer, LossScaler


def test_dynamic_scaler_backs_off_on_overflow_and_grows_after_clean_steps():
    scaler = LossScaler("dynamic", init_scale=2.0 ** 10, growth_interval=3)
    scaler.update(found_nonfinite=True)
    assert scaler.scale == 2.0 ** 9 and scaler.clean_steps == 0
    scaler.update(False)
    scaler.update(False)
    assert scaler.scale == 2.0 ** 9 and scaler.clean_steps == 2
    scaler.update(True)  # an overflow resets the clean count
    assert scaler.scale == 2.0 ** 8 and scaler.clean_steps == 0
    for _ in range(3):
        scaler.update(False)
    assert scaler.scale == 2.0 ** 9 and scaler.clean_steps == 0


def test_static_and_disabled_scalers_keep_their_scale():
    static = LossScaler("static", init_scale=128.0)
    static.update(True)
    static.update(False)
    assert static.scale == 128.0 and static.checks_gradients
    none = LossScaler("none", init_scale=128.0)
    assert none.scale == 1.0 and not none.checks_gradients


@pytest.mark.parametrize("arguments, words", [
    (dict(mode="auto"), ["mode='auto'", "dynamic"]),
    (dict(backoff_factor=2.0), ["backoff_factor=2.0"]),
    (dict(growth_interval=0), ["growth_interval=0"]),
    (dict(init_scale=-1.0), ["init_scale=-1.0"]),
])
def test_scaler_rejects_bad_arguments(arguments, words):
    with pytest.raises(ValueError) as info:
        LossScaler(**arguments)
    assert all(word in str(info.value) for word in words)


def _single_weight(value, size=1):
    return torch.nn.Parameter(torch.full((size,), value, dtype=torch.float32))


def _sgd_step(optimizer, parameter, gradient):
    optimizer.zero_grad()
    parameter.grad = torch.full_like(parameter, gradient)
    return optimizer.step()


def test_nearest_even_update_without_master_copy_cancels_small_updates():
    # w = 1 in BF16: ulp 2^-7, so an update of 2^-10 is below half an ulp and is lost.
    weight = _single_weight(1.0, 100)
    optimizer = EmulatedOptimizer(torch.optim.SGD([weight], lr=1.0), storage="bf16", master_weights=False)
    for _ in range(10):
        report = _sgd_step(optimizer, weight, -2.0 ** -10)
    assert torch.all(weight == 1.0)
    assert report.updates_requested == 100 and report.cancelled_fraction == 1.0


def test_stochastic_update_keeps_small_updates_in_expectation():
    weight = _single_weight(1.0, 20000)
    optimizer = EmulatedOptimizer(torch.optim.SGD([weight], lr=1.0), storage="bf16", master_weights=False,
                                  update_rounding="stochastic", seed=3)
    report = _sgd_step(optimizer, weight, -2.0 ** -10)
    # Each element becomes 1 + 2^-7 with probability (2^-10) / (2^-7) = 1/8, else stays 1.
    assert set(weight.unique().tolist()) == {1.0, 1.0 + 2.0 ** -7}
    assert abs(float(weight.detach().mean()) - (1 + 2.0 ** -10)) < 4 * 2.0 ** -7 * (0.125 * 0.875 / 20000) ** 0.5
    assert abs(report.cancelled_fraction - 0.875) < 0.02
    # Reproducible: the same seed draws the same roundings.
    again = _single_weight(1.0, 20000)
    _sgd_step(EmulatedOptimizer(torch.optim.SGD([again], lr=1.0), storage="bf16", master_weights=False,
                                update_rounding="stochastic", seed=3), again, -2.0 ** -10)
    assert torch.equal(weight, again)


def test_master_weights_accumulate_updates_the_stored_copy_cannot_hold():
    weight = _single_weight(1.0, 4)
    optimizer = EmulatedOptimizer(torch.optim.SGD([weight], lr=1.0), storage="bf16", master_weights=True)
    for step in range(1, 9):
        report = _sgd_step(optimizer, weight, -2.0 ** -10)
        master = optimizer.master[weight]
        assert torch.all(master == 1 + step * 2.0 ** -10)
        assert torch.equal(weight.detach(), flt.quantize(master, "bf16"))
        assert report.updates_cancelled == 0
    assert torch.all(weight == 1 + 2.0 ** -7)  # 1 + 8 * 2^-10 is representable


def test_initial_weights_are_rounded_to_the_storage_format():
    weight = _single_weight(1.0 + 2.0 ** -12, 3)
    EmulatedOptimizer(torch.optim.SGD([weight], lr=1.0), storage=fl.BF16, master_weights=False)
    assert torch.all(weight == 1.0)


def test_scaled_loss_gives_the_unscaled_update():
    def train(scaler):
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 3)
        optimizer = EmulatedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), loss_scaler=scaler)
        optimizer.zero_grad()
        optimizer.backward(model(torch.randn(4, 5)).pow(2).mean())
        report = optimizer.step()
        return [p.detach().clone() for p in model.parameters()], report
    plain, _ = train(None)
    scaled, report = train(LossScaler("static", init_scale=2.0 ** 12))
    assert report.loss_scale == 2.0 ** 12 and not report.skipped
    assert all(torch.equal(a, b) for a, b in zip(plain, scaled))


def test_non_finite_gradients_skip_the_step_and_back_off():
    weight = _single_weight(1.0, 2)
    scaler = LossScaler("dynamic", init_scale=2.0 ** 16, growth_interval=2)
    optimizer = EmulatedOptimizer(torch.optim.SGD([weight], lr=1.0), loss_scaler=scaler)
    optimizer.zero_grad()
    weight.grad = torch.tensor([float("inf"), 1.0])
    report = optimizer.step()
    assert report.skipped and report.nonfinite and report.loss_scale == 2.0 ** 16
    assert torch.all(weight == 1.0) and scaler.scale == 2.0 ** 15
    for _ in range(2):
        report = _sgd_step(optimizer, weight, 2.0 ** 15)  # a scaled gradient of 1
    assert not report.skipped and scaler.scale == 2.0 ** 16
    assert torch.all(weight == -1.0)


def test_without_a_scaler_non_finite_steps_are_taken_and_reported():
    weight = _single_weight(1.0, 2)
    optimizer = EmulatedOptimizer(torch.optim.SGD([weight], lr=1.0))
    report = _sgd_step(optimizer, weight, float("nan"))
    assert report.nonfinite and not report.skipped and torch.isnan(weight).all()


def test_wrapper_rejects_bad_arguments():
    weight = _single_weight(1.0)
    sgd = torch.optim.SGD([weight], lr=1.0)
    with pytest.raises(ValueError, match="update_rounding='odd'.*nearest_even, stochastic"):
        EmulatedOptimizer(sgd, update_rounding="odd")
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        EmulatedOptimizer([weight])
    with pytest.raises(TypeError, match="loss_scaler must be a LossScaler"):
        EmulatedOptimizer(sgd, loss_scaler="dynamic")
    with pytest.raises(ValueError, match="storage scaling='auto'"):
        EmulatedOptimizer(sgd, storage=flt.TensorFormat("bf16", scaling="auto"))

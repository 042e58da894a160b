"""The built-in model with batch normalisation: where "accumulation is the same training" stops being true."""

import numpy as np
import pytest
import torch

import epochviz as ev
from epochviz.models import build, fresh_weights, normalises_by_batch
from epochviz.objectives import evaluate, loss_function

DIGITS = ev.digits()
SETTINGS = {"epochs": 5, "batch_size": 1024, "optimizer": "adam", "lr": 0.01}


def test_accumulation_repeats_the_mlps_training_but_not_the_batch_norm_ones():
    for model in ("mlp", "mlp_batchnorm"):
        whole, split = (ev.train(DIGITS, model=model, accumulate=pieces, **SETTINGS) for pieces in (1, 3))
        assert whole.steps_per_epoch == split.steps_per_epoch == 2
        gap = np.abs(whole.epochs.val_loss - split.epochs.val_loss).max()
        if model == "mlp":  # the same gradient, summed in another order: float32 rounding only
            np.testing.assert_allclose(split.steps.loss, whole.steps.loss, rtol=1e-5)
            assert gap < 1e-4
        else:  # each micro-batch is normalised by its own mean and spread: another gradient, another training
            assert gap > 0.1


def test_validation_uses_the_running_averages_and_leaves_the_model_training():
    model = build("mlp_batchnorm", DIGITS, seed=0)
    model(DIGITS.x[:256]).sum()  # one training-mode pass, so the running averages are not the initial ones
    before = {name: value.clone() for name, value in model.state_dict().items()}
    loss_of = loss_function(DIGITS.task)
    loss, _ = evaluate(model, DIGITS.x, DIGITS.y, loss_of)
    assert model.training
    for name, value in model.state_dict().items():  # evaluating changed no running average
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    model.eval()
    with torch.no_grad():
        assert loss == pytest.approx(float(loss_of(model(DIGITS.x), DIGITS.y)), rel=1e-6)
        model.train()
        assert loss != pytest.approx(float(loss_of(model(DIGITS.x), DIGITS.y)), rel=1e-3)  # batch statistics differ


def test_a_run_records_the_validation_loss_of_the_model_in_eval_mode():
    run = ev.train(DIGITS, model="mlp_batchnorm", epochs=2, batch_size=128)
    model, rows = run.model, torch.as_tensor(run.val_indices)
    model.eval()
    with torch.no_grad():
        loss = float(loss_function(DIGITS.task)(model(DIGITS.x[rows]), DIGITS.y[rows]))
    assert run.epochs.val_loss.iloc[-1] == pytest.approx(loss, rel=1e-6)


def test_new_weights_for_the_batch_norm_model_are_those_a_new_model_starts_from():
    trained = ev.train(DIGITS, model="mlp_batchnorm", epochs=1).model
    assert normalises_by_batch(trained) and not normalises_by_batch(build("mlp", DIGITS, seed=0))
    fresh, new = fresh_weights(trained, seed=5), build("mlp_batchnorm", DIGITS, seed=5).state_dict()
    assert fresh.keys() == new.keys()
    for name in new:  # the weights and the running averages of batch norm
        torch.testing.assert_close(fresh[name], new[name], rtol=0, atol=0)


def test_a_checkpointed_batch_norm_run_resumes_exactly(tmp_path):
    path = tmp_path / "bn.pt"
    straight = ev.train(DIGITS, model="mlp_batchnorm", epochs=4, batch_size=256)
    ev.train(DIGITS, model="mlp_batchnorm", epochs=2, batch_size=256, checkpoint=str(path))
    resumed = ev.resume(path, epochs=4)
    np.testing.assert_array_equal(resumed.steps.loss, straight.steps.loss)
    np.testing.assert_array_equal(resumed.epochs.val_loss, straight.epochs.val_loss)  # running averages restored


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"batch_size": 1437}, "the epoch's last batch has 1 sample"),  # 1438 training samples
        ({"batch_size": 64, "accumulate": 32}, "a batch of 30 split into accumulate=32 micro-batches has one of 1"),
    ],
)
def test_a_batch_norm_batch_of_one_sample_is_refused_before_training(arguments, says):
    seen = []
    with pytest.raises(ValueError, match=f"model mlp_batchnorm has batch normalisation.*{says}"):
        ev.train(DIGITS, model="mlp_batchnorm", on_epoch=seen.append, **arguments)
    assert not seen
    ev.train(DIGITS, model="mlp_batchnorm", epochs=1, drop_last=True, **arguments)  # the remedy the message names


def test_train_many_refuses_the_batch_norm_model_by_name():
    with pytest.raises(ValueError, match=r"train_many batches only.*train 'mlp_batchnorm' with epochviz\.train"):
        ev.train_many(DIGITS, [{}, {"seed": 1}], model="mlp_batchnorm")


import pytest
import torch

from helpers.networks.checkpoints import CheckpointError, load_into, read_sidecar, save_checkpoint
from helpers.datasets.data import load_dataset
from helpers.networks.models import build_model
from helpers.networks.train import TrainConfig, evaluate, resolve_precision, seed_everything, train


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("fashion_mnist", "train").subset(512, seed=1)


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
def test_training_lowers_loss_and_is_repeatable(tiny):
    before = evaluate(build_model("resnet18", 10, 1, 0.25), tiny)["loss"]
    runs = []
    for _ in range(2):
        seed_everything(3)
        model = build_model("resnet18", 10, 1, 0.25)
        hist = train(model, tiny, TrainConfig(epochs=3, batch_size=64, lr=0.05, seed=3), progress=False)
        runs.append((hist[-1]["train_loss"], evaluate(model, tiny)["loss"]))
    assert runs[0][1] < 0.7 * before
    assert runs[0] == pytest.approx(runs[1], rel=1e-5)  # seeded: identical on the CPU


@pytest.mark.slow  # seconds, not milliseconds: kept out of `make check`
def test_precision_choice_and_bf16_training(tiny):
    resnet, mobilenet = build_model("resnet18", 10, 1, 0.25), build_model("mobilenet_v2", 10, 1, 0.25)
    assert resolve_precision(mobilenet) == "fp32"  # grouped convolutions: bf16 is slower there
    assert resolve_precision(resnet, "fp32") == "fp32" and resolve_precision(mobilenet, "bf16") == "bf16"
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert resolve_precision(resnet, dev=torch.device("cpu")) == ("bf16" if native else "fp32")
    before = evaluate(resnet, tiny)["loss"]
    train(resnet, tiny, TrainConfig(epochs=3, batch_size=64, lr=0.05, seed=3, precision="bf16"), progress=False)
    assert all(p.dtype == torch.float32 for p in resnet.parameters())  # autocast: the weights stay fp32
    assert evaluate(resnet, tiny)["loss"] < 0.7 * before


def test_checkpoint_round_trip(tmp_path, tiny):
    model = build_model("mobilenet_v2", 10, 1, 0.25).eval()
    path = save_checkpoint(model, tmp_path / "m.pt", {"model": "mobilenet_v2"}, {"val_accuracy": 0.5}, "fp")
    clone = load_into(build_model("mobilenet_v2", 10, 1, 0.25), path)
    x = tiny.images[:4]
    assert torch.allclose(model(x), clone(x))
    side = read_sidecar(path)
    assert side["dataset_fingerprint"] == "fp" and side["packages"]["torch"].startswith("2.14")
    assert not list(tmp_path.glob("*.tmp*"))


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_into(build_model("resnet18", 10), bad)
    good = save_checkpoint(build_model("resnet18", 10, 1, 0.25), tmp_path / "r.pt", {}, {})
    with pytest.raises(CheckpointError, match="does not match"):
        load_into(build_model("resnet18", 47, 1, 0.25), good)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_into(build_model("resnet18", 10), tmp_path / "missing.pt")


def test_bad_train_config():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, not 'fp16'"):
        TrainConfig(precision="fp16")

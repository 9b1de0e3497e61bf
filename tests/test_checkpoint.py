"""STCN checkpoint compatibility, REMN weight files, and ImageNet initialisation logic."""

from __future__ import annotations

import copy

import pytest
import torch
from torchvision.models import resnet18, resnet50

from remn.config import load_config
from remn.model import CheckpointError, build_model, load_network_weights, load_weights, read_state_dict, save_weights
from remn.model.encoders import copy_resnet18_weights, copy_resnet50_weights


# These tests load weights into the networks: each gets its own copy of the session's
# shared ones, so that later tests still see the seeded random weights.
@pytest.fixture
def stcn_model(stcn_model):
    return copy.deepcopy(stcn_model)


@pytest.fixture
def remn_model(remn_model):
    return copy.deepcopy(remn_model)


def test_stcn_mode_state_dict_equals_stcn_exactly(stcn_model, stcn_key_list):
    ours = [(k, tuple(v.shape)) for k, v in stcn_model.state_dict().items()]
    assert ours == stcn_key_list
    assert len(ours) == 405


def test_stcn_layout_loads_strictly(stcn_model, stcn_random_state):
    stcn_model.load_state_dict(stcn_random_state, strict=True)
    for name, tensor in stcn_model.state_dict().items():
        assert torch.equal(tensor, stcn_random_state[name]), name


def test_stcn_file_into_remn_reports_only_remn_keys_as_new(remn_model, stcn_random_state, tmp_path):
    path = tmp_path / "stcn.pth"
    torch.save(stcn_random_state, path)
    report = load_network_weights(remn_model, path)
    own = set(remn_model.state_dict())
    assert set(report.new) == own - set(stcn_random_state)
    assert report.new and all(k.startswith(("frm.", "rrm.")) for k in report.new)
    assert not report.widened_value_conv
    assert torch.equal(remn_model.state_dict()["decoder.pred.weight"], stcn_random_state["decoder.pred.weight"])
    assert float(remn_model.frm.gate.detach()) == 0.0  # REMN's modules stay at their identity start


def test_stcn_file_into_stcn_mode_reports_nothing_new(stcn_model, stcn_random_state, tmp_path):
    path = tmp_path / "stcn.pth"
    torch.save(stcn_random_state, path)
    report = load_network_weights(stcn_model, path)
    assert report.new == [] and len(report.loaded) == 405


def test_single_object_checkpoint_is_widened_with_a_zero_channel(stcn_model, stcn_random_state):
    state = dict(stcn_random_state)
    state["value_encoder.conv1.weight"] = torch.randn(64, 4, 7, 7)
    report = load_network_weights(stcn_model, state)
    assert report.widened_value_conv
    weight = stcn_model.value_encoder.conv1.weight.detach()
    assert torch.equal(weight[:, :4], state["value_encoder.conv1.weight"])
    assert torch.equal(weight[:, 4], torch.zeros(64, 7, 7))


def test_wrappers_and_module_prefix_are_accepted(stcn_random_state, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"it": 10, "network": {f"module.{k}": v for k, v in stcn_random_state.items()}}, path)
    state = read_state_dict(path)
    assert set(state) == set(stcn_random_state)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update({"extra.weight": torch.zeros(1)}), "does not have"),
        (lambda s: s.pop("decoder.pred.bias"), "missing"),
        (lambda s: s.update({"key_proj.key_proj.bias": torch.zeros(32)}), "shape"),
    ],
)
def test_checkpoints_that_do_not_fit_are_refused(stcn_model, stcn_random_state, change, message):
    state = dict(stcn_random_state)
    change(state)
    with pytest.raises(CheckpointError, match=message):
        load_network_weights(stcn_model, state)


def test_unreadable_files_are_refused_with_their_name(stcn_model, stcn_random_state, tmp_path):
    path = tmp_path / "truncated.pth"
    torch.save(stcn_random_state, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        load_network_weights(stcn_model, path)
    with pytest.raises(CheckpointError, match="not found"):
        load_network_weights(stcn_model, tmp_path / "nothing.pth")
    text = tmp_path / "text.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="text.pth"):
        read_state_dict(text)


class _Payload:
    """Any class: unpickling it would run code, which weights_only loading refuses."""


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "code.pth"
    torch.save({"weights": _Payload()}, path)
    with pytest.raises(CheckpointError, match="code.pth"):
        read_state_dict(path)  # weights_only=True refuses arbitrary objects


@pytest.mark.slow
def test_save_is_atomic_and_round_trips(remn_model, tmp_path):
    path = tmp_path / "runs" / "weights.pth"
    save_weights(remn_model, path)
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["weights.pth"]
    torch.manual_seed(9)
    other = build_model(load_config())
    load_weights(other, path)
    for name, tensor in other.state_dict().items():
        assert torch.equal(tensor, remn_model.state_dict()[name]), name
    stcn = build_model(load_config(overrides=["model.frm=false", "memory.rrm=false"]))
    with pytest.raises(CheckpointError, match="weights.pth"):
        load_weights(stcn, path)


def test_failed_save_leaves_no_file_behind(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    path.write_bytes(b"previous")

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_weights(torch.nn.Linear(1, 1), path)
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["w.pth"]


def test_resnet18_weights_copy_into_value_encoder(stcn_model):
    torch.manual_seed(4)
    source = resnet18(weights=None).state_dict()
    copied = copy_resnet18_weights(stcn_model.value_encoder, source)
    enc = stcn_model.value_encoder.state_dict()
    assert "layer3.1.conv2.weight" in copied and "fc.weight" not in copied
    assert torch.equal(enc["layer2.0.downsample.0.weight"], source["layer2.0.downsample.0.weight"])
    assert torch.equal(enc["conv1.weight"][:, :3], source["conv1.weight"])
    assert enc["conv1.weight"][:, 3:].abs().sum() > 0  # mask channels: orthogonal, not zero
    assert not any(k.startswith("layer4") for k in enc)


def test_resnet50_weights_copy_into_key_encoder(stcn_model):
    torch.manual_seed(5)
    source = resnet50(weights=None).state_dict()
    copy_resnet50_weights(stcn_model.key_encoder, source)
    enc = stcn_model.key_encoder.state_dict()
    assert torch.equal(enc["res2.2.conv3.weight"], source["layer1.2.conv3.weight"])
    assert torch.equal(enc["layer3.5.bn3.running_var"], source["layer3.5.bn3.running_var"])


@pytest.mark.slow
def test_one_loader_for_remn_and_stcn_weights_reports_what_it_did(stcn_model, remn_model, stcn_random_state, tmp_path):
    stcn_file = tmp_path / "stcn.pth"
    torch.save(stcn_random_state, stcn_file)
    report = load_network_weights(remn_model, stcn_file)
    assert report.kind == "stcn" and report.source == str(stcn_file) and report.unexpected == []
    assert report.description.startswith(f"loaded 405 STCN entries from {stcn_file}; 27 REMN entries are new")
    assert "(frm, rrm)" in str(report)
    remn_file = tmp_path / "remn.pth"
    save_weights(remn_model, remn_file)
    report = load_network_weights(remn_model, remn_file)
    assert report.kind == "remn" and report.missing == []
    assert report.description == f"loaded 432 entries from {remn_file}"
    # REMN weights in a network with FRM and RRM switched off: their entries are set aside, the rest loads
    report = load_network_weights(stcn_model, remn_file)
    assert report.kind == "remn" and len(report.loaded) == 405 and len(report.unexpected) == 27
    assert "frm, rrm switched off here: 27 entries of the file set aside" in report.description
    assert torch.equal(stcn_model.state_dict()["decoder.pred.weight"], remn_model.state_dict()["decoder.pred.weight"])
    # REMN weights that do not fit are refused as such, and nothing is loaded
    state = read_state_dict(remn_file)
    state["frm.weight_conv.weight"] = torch.zeros(1)
    before = remn_model.state_dict()["decoder.pred.weight"].clone()
    state["decoder.pred.weight"] = torch.ones_like(before)
    with pytest.raises(CheckpointError, match="does not fit this network: 1 shape mismatches"):
        load_network_weights(remn_model, state, name="bad.pth")
    assert torch.equal(remn_model.state_dict()["decoder.pred.weight"], before)

from __future__ import annotations

import dataclasses

import pytest

from remn.config import ConfigError, REMNConfig, config_to_yaml, load_config

from conftest import REPO

CONFIGS = REPO / "configs"


def test_defaults_are_remn_with_every_module_on():
    cfg = load_config()
    assert (cfg.model.frm, cfg.memory.asm, cfg.memory.rrm) == (True, True, True)
    assert cfg.model.key_dim == 64 and cfg.model.value_dim == 512
    assert load_config(CONFIGS / "remn.yaml") == dataclasses.replace(cfg, name="remn")


def test_stcn_config_switches_every_module_off():
    cfg = load_config(CONFIGS / "stcn.yaml")
    assert (cfg.model.frm, cfg.memory.asm, cfg.memory.rrm) == (False, False, False)
    assert cfg.memory.mem_every == 5 and cfg.memory.top_k == 20


@pytest.mark.parametrize(
    "name, flags",
    [
        ("no_frm", (False, True, True)),
        ("no_asm", (True, False, True)),
        ("no_rrm", (True, True, False)),
        ("frm_only", (True, False, False)),
    ],
)
def test_ablation_files(name, flags):
    cfg = load_config(CONFIGS / "ablation" / f"{name}.yaml")
    assert (cfg.model.frm, cfg.memory.asm, cfg.memory.rrm) == flags


def test_single_flag_ablations_change_exactly_one_field():
    base = dataclasses.asdict(load_config(CONFIGS / "remn.yaml"))
    for name in ("no_frm", "no_asm", "no_rrm"):
        cfg = dataclasses.asdict(load_config(CONFIGS / "ablation" / f"{name}.yaml"))
        changed = [
            (section, key)
            for section in ("model", "memory", "runtime")
            for key in base[section]
            if base[section][key] != cfg[section][key]
        ]
        assert len(changed) == 1, (name, changed)


def test_overrides_are_typed_and_applied_last():
    cfg = load_config(CONFIGS / "remn.yaml", ["memory.rrm=false", "memory.capacity=8", "memory.asm_tau=0.5"])
    assert cfg.memory.rrm is False and cfg.memory.capacity == 8 and cfg.memory.asm_tau == 0.5
    assert isinstance(cfg, REMNConfig)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["memory.rr=false"], "rr"),
        (["memory.capacity=many"], "capacity"),
        (["memory.interval_mode=sometimes"], "interval_mode"),
        (["model.frm_window=4"], "frm_window"),
        (["memory.capacity=1"], "capacity"),
        (["memory.asm_min_interval=5", "memory.asm_max_interval=3"], "asm_min_interval"),
        (["memory.rrm"], "key=value"),
    ],
)
def test_bad_overrides_name_the_problem(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(CONFIGS / "remn.yaml", overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("model:\n  frn: true\n")
    with pytest.raises(ConfigError, match="frn"):
        load_config(unknown)
    loop_a, loop_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    loop_a.write_text("base: b.yaml\n")
    loop_b.write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        load_config(loop_a)


def test_yaml_round_trip(tmp_path):
    cfg = load_config(CONFIGS / "ablation" / "no_rrm.yaml", ["memory.top_k=7"])
    path = tmp_path / "resolved.yaml"
    path.write_text(config_to_yaml(cfg))
    assert load_config(path) == cfg


def test_every_field_is_documented():
    text = (REPO / "docs" / "config.md").read_text()
    cfg = dataclasses.asdict(load_config())
    for section, fields in cfg.items():
        names = [section] if not isinstance(fields, dict) else [f"{section}.{f}" for f in fields]
        for name in names:
            assert f"`{name}`" in text, f"{name} is not documented in docs/config.md"


def test_documented_defaults_equal_the_code():
    rows = {}
    for line in (REPO / "docs" / "config.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[2].strip("`")
    flat = {}
    for section, fields in dataclasses.asdict(load_config()).items():
        if isinstance(fields, dict):
            flat.update({f"{section}.{k}": v for k, v in fields.items()})
        else:
            flat[section] = fields
    assert set(rows) == set(flat)
    for name, value in flat.items():
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        assert rows[name] == shown, f"docs/config.md says {name} = {rows[name]}, the code says {shown}"


def test_inference_precision_auto_resolves_by_what_the_device_computes(monkeypatch):
    import torch

    from remn import runtime
    from remn.inference import InferenceCore
    from remn.model import build_model

    assert load_config(REPO / "configs" / "remn.yaml").runtime.precision == "auto"
    assert load_config(REPO / "configs" / "stcn.yaml").runtime.precision == "auto"
    cpu = torch.device("cpu")
    assert runtime.resolve_precision("fp16", cpu) == "fp16" and runtime.resolve_precision("fp32", "cuda") == "fp32"
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda native=native: native)
        assert runtime.resolve_precision("auto", cpu) == expected
        assert InferenceCore(build_model(REMNConfig()), REMNConfig()).precision == expected  # the core's, resolved
    for bf16, expected in ((True, "bf16"), (False, "fp32")):  # no fp16 fallback at inference (training has one)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda bf16=bf16: bf16)
        assert runtime.resolve_precision("auto", torch.device("cuda")) == expected
    assert runtime.resolve_precision("auto", "mps") == "fp32"
    with pytest.raises(ConfigError, match="runtime.precision"):
        load_config(None, ["runtime.precision=fast"])

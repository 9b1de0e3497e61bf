"""Parameter counts per component, for docs/model.md and scripts/count_params.py."""

from __future__ import annotations

from torch import nn

from .network import REMN

__all__ = ["COMPONENTS", "count_parameters", "parameter_table"]

COMPONENTS = (
    ("key_encoder", "Key encoder (ResNet-50 to layer3)"),
    ("value_encoder", "Value encoder (ResNet-18 to layer3, biased convs, 5 ch) + fuser"),
    ("value_encoder.fuser", "of which: feature fusion block with CBAM"),
    ("key_proj", "Key projection (3x3, 1024 -> C^k)"),
    ("key_comp", "Key compression (3x3, 1024 -> 512)"),
    ("decoder", "Decoder"),
    ("frm", "FRM (local attention + gate g)"),
    ("rrm.gate", "RRM modulation gate"),
    ("rrm.key_reducers", "RRM key reduction Conv3d (one per policy)"),
    ("rrm.value_reducers", "RRM value reduction Conv3d (one per policy)"),
)


def _numel(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def count_parameters(model: REMN) -> dict[str, int]:
    """Trainable parameters per component name of :data:`COMPONENTS`, plus ``total``."""
    counts = {}
    for name, _ in COMPONENTS:
        module: nn.Module | None = model
        for part in name.split("."):
            module = getattr(module, part, None) if module is not None else None
        counts[name] = _numel(module)
    counts["total"] = _numel(model)
    return counts


def parameter_table(modes: dict[str, REMN]) -> str:
    """A Markdown table: one row per component, one column per mode."""
    counted = {mode: count_parameters(model) for mode, model in modes.items()}
    header = "| component | " + " | ".join(modes) + " |"
    rule = "|---|" + "---:|" * len(modes)
    rows = [header, rule]
    for name, label in COMPONENTS:
        cells = " | ".join(f"{counted[m][name]:,}" for m in modes)
        rows.append(f"| {label} (`{name}`) | {cells} |")
    rows.append("| **total** | " + " | ".join(f"**{counted[m]['total']:,}**" for m in modes) + " |")
    return "\n".join(rows)

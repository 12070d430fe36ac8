"""Run configs for tests: SPEQ against FP16 on a shape-only workload, written into a test's folder."""

from pathlib import Path

import yaml


def speq_vs_fp16(folder: Path, decoding: dict, shape: dict, fp16_overrides: dict | None = None) -> Path:
    """``folder/speq.yaml``: SPEQ (BSFP draft, quarter mode) with ``decoding`` keys added, FP16 as its
    baseline (with ``fp16_overrides``), one shape workload ``w`` with the ``shape`` keys; returns its path."""
    (folder / "fp16.yaml").write_text(
        yaml.safe_dump({"name": "fp16", "hardware": "speq", "decoding": {"kind": "autoregressive"}})
    )
    fp16 = {"config": "fp16.yaml", "overrides": fp16_overrides} if fp16_overrides else "fp16.yaml"
    config = {
        "name": "speq",
        "hardware": {"include": "speq"},
        "decoding": {
            "method": "speq",
            "draft": "speq",
            "level_modes": ["fp16", "quarter"],
            "fp16_mode": "bsfp16",
            "formats": ["fp16", "bsfp_draft"],
            **decoding,
        },
        "baselines": {"fp16": fp16},
        "workloads": [{"name": "w", "shape": shape}],
    }
    path = folder / "speq.yaml"
    path.write_text(yaml.safe_dump(config))
    return path

"""The compute options of `mmdream render` and the job spec's compute section (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmdream.backbones.compute import ComputeParams
from mmdream.cli import build_parser
from mmdream.cli.render import compute_overrides
from mmdream.errors import ParameterError
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import load_job, parse_job


def _job(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"input": "in.mp4", "output": "out.mp4", **extra}))
    return path


def test_render_flags_override_the_spec_and_absent_flags_keep_it(tmp_path: Path) -> None:
    spec = _job(tmp_path, compute={"precision": "bf16"})
    parser = build_parser()
    kept = load_job(spec).with_overrides(**compute_overrides(parser.parse_args(["render", str(spec)])))
    assert compile_plan(kept).picture.compute == ComputeParams(precision="bf16")
    args = parser.parse_args(["render", str(spec), "--precision", "fp32", "--channels-last"])
    assert compile_plan(load_job(spec).with_overrides(**compute_overrides(args))).picture.compute == \
        ComputeParams(precision="fp32", channels_last=True)
    assert compile_plan(parse_job({"input": "a.mp4", "output": "b.mp4"})).picture.compute == ComputeParams()


def test_a_bad_compute_section_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="compute: .*precision='fp16' is invalid"):
        load_job(_job(tmp_path, compute={"precision": "fp16"}))
    with pytest.raises(ParameterError, match="compute.tf32: unknown key"):
        load_job(_job(tmp_path, compute={"tf32": True}))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "job.yaml", "--precision", "fp16"])

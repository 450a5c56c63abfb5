"""bench/gpu.py runs on the CPU at a tiny size with only what the accelerator machine has: PyAV, Ray, librosa,
soundfile, pydantic, tqdm (and other heavy extras) are made unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = ("av", "ray", "librosa", "soundfile", "pydantic", "tqdm", "yaml", "boto3", "botocore", "scipy", "sklearn",
          "matplotlib", "requests", "torchaudio", "torchvision")
BLOCKER = f'''import importlib.abc, sys
class _Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in {set(HIDDEN)!r}:
            raise ImportError(f"No module named {{name!r}} (hidden: the accelerator machine has none)")
sys.meta_path.insert(0, _Hidden())
'''


def test_gpu_bench_runs_on_the_cpu_without_the_missing_packages(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    hidden = subprocess.run([sys.executable, "-c", "import pydantic"], env=env, capture_output=True, text=True)
    assert hidden.returncode != 0 and "hidden" in hidden.stderr  # the blocker is in force
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--device", "cpu", "--size", "48",
                          "--repeats", "1", "--frames", "3", "--modes", "fp32,bf16,channels_last", "--threads", "1"],
                         env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    header = json.loads(lines[0])
    assert header["torch"] and "threads" in header["machine"]
    rows = [json.loads(line) for line in lines[1:] if line.startswith("{")]
    assert [(r["backbone"], r["mode"]) for r in rows] == [
        (b, m) for b in ("vgg16", "efficientnet_lite0") for m in ("fp32", "bf16", "channels_last")]
    for r in rows:
        assert r["size"] == "86x48" and r["device"] == "cpu" and r["step_peak_mib"] is None
        assert r["bare_s"] > 0 and r["step_s"] > 0 and abs(r["ratio"] - r["step_s"] / r["bare_s"]) < 0.01
        assert r["loop"]["frames"] == 3 and r["loop"]["fps"] > 0 and r["loop"]["first_frame_s"] > 0
    table = [line for line in lines if " | " in line]
    assert table[0].startswith("backbone | mode | bare s | step s | step / bare | fp32 / step") and len(table) == 8
    assert table[2].split(" | ")[5] == "1.0"  # the fp32 row against itself

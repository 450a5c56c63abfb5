"""The device a Ray actor picks when Ray grants it part of a GPU (a GPU resource advertised on a CPU node)."""

from __future__ import annotations

import ray
import torch

from mmdream_cluster.devices import actor_device


@ray.remote
class _Probe:
    def device(self) -> tuple[list, str, str | None, str | None]:  # type: ignore[type-arg]
        import os

        choice = actor_device()
        return ray.get_gpu_ids(), choice.device, choice.note, os.environ.get("CUDA_VISIBLE_DEVICES")


def test_actors_sharing_a_gpu_get_its_id_and_pick_their_device() -> None:
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        sharing = [_Probe.options(num_cpus=0.5, num_gpus=0.5).remote() for _ in range(2)]  # both fit on one GPU
        without = _Probe.options(num_cpus=0.5).remote()
        results = ray.get([a.device.remote() for a in sharing])
        ids, device, note, _ = ray.get(without.device.remote())
    finally:
        ray.shutdown()
    assert ids == [] and device == "cpu" and note is None
    for ids, device, note, visible in results:
        assert [str(i) for i in ids] == ["0"] and visible == "0"
        if torch.cuda.is_available():
            assert device == "cuda:0" and note is None
        else:  # CPU-only torch: the rule says cpu, and why
            assert device == "cpu" and "granted GPU 0 but torch sees no CUDA device" in note

"""Image and film commands read and write s3:// URIs like local paths (real SeaweedFS server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mmdream.media.video import probe


def test_image_and_video_commands_on_s3(s3_server, media_dir: Path, weights_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s3, bucket = s3_server.client(), s3_server.bucket
    s3.upload_file(str(media_dir / "images" / "chelsea.png"), bucket, "in/cat.png")
    s3.upload_file(str(media_dir / "video" / "bbb_320x180.mp4"), bucket, "in/bbb.mp4")
    env = {**os.environ, **s3_server.env, "MMDREAM_WEIGHTS": str(weights_dir)}

    def mmdream(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mmdream.cli", *args, "--progress", "none"], env=env,
                              capture_output=True, text=True, timeout=300)

    image = mmdream("image", f"s3://{bucket}/in/cat.png", f"s3://{bucket}/out/cat.png", "--size", "96",
                    "--steps", "2", "--octaves", "1")
    assert image.returncode == 0, image.stderr
    assert s3.head_object(Bucket=bucket, Key="out/cat.png")["ContentLength"] > 1000
    info = subprocess.run([sys.executable, "-m", "mmdream.cli", "info", f"s3://{bucket}/out/cat.png", "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert info.returncode == 0 and json.loads(info.stdout)["options"]["size"] == 96  # its record, read from S3
    film = mmdream("video", f"s3://{bucket}/in/bbb.mp4", f"s3://{bucket}/out/bbb.mp4", "--size", "64",
                   "--frames", "0:6", "--steps", "1", "--octaves", "1", "--frame-steps", "1",
                   "--work-dir", f"s3://{bucket}/work/bbb")
    assert film.returncode == 0, film.stderr
    s3.download_file(bucket, "out/bbb.mp4", str(tmp_path / "bbb.mp4"))
    assert probe(tmp_path / "bbb.mp4").frame_count == 6
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="work/bbb/")["Contents"]]
    assert "work/bbb/000005.png" in keys and "work/bbb/settings.json" in keys  # checkpoints on S3, kept
    missing = mmdream("image", f"s3://{bucket}/in/none.png", str(tmp_path / "x.png"))
    assert missing.returncode == 2 and "none.png" in missing.stderr and s3_server.secret_key not in missing.stderr
    assert not (tmp_path / "x.png").exists()


def test_train_to_s3_and_use_the_checkpoint_from_there(s3_server, media_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s3, bucket = s3_server.client(), s3_server.bucket
    env = {**os.environ, **s3_server.env, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    uri = f"s3://{bucket}/runs/animals.safetensors"

    def mmdream(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mmdream.cli", *args], env=env, capture_output=True, text=True,
                              timeout=300)

    train = mmdream("train", "image", str(media_dir / "datasets" / "animals" / "images"), "--base", "small",
                    "--size", "32", "--epochs", "2", "--normalise", "dataset", "--out", uri, "--progress", "none")
    assert train.returncode == 0, train.stderr
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="runs/")["Contents"])
    assert keys == ["runs/animals.curves.png", "runs/animals.json", "runs/animals.safetensors"]
    assert not list(tmp_path.glob("*.safetensors"))
    classify = mmdream("classify", str(media_dir / "images" / "chelsea.png"), "-b", f"ckpt:{uri}", "--top", "3")
    assert classify.returncode == 0, classify.stderr
    assert len(json.loads(classify.stdout)["top"]) == 3
    assert list((tmp_path / "cache").rglob("animals.safetensors"))  # fetched into the user cache


def test_gan_commands_read_and_write_s3(s3_server, media_dir: Path, weights_dir: Path) -> None:  # type: ignore[no-untyped-def]
    s3, bucket = s3_server.client(), s3_server.bucket
    s3.upload_file(str(media_dir / "audio" / "music_ambi_piano.wav"), bucket, "in/piano.wav")
    env = {**os.environ, **s3_server.env, "MMDREAM_WEIGHTS": str(weights_dir), "OMP_NUM_THREADS": "1"}

    def mmdream(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mmdream.cli", "gan", *args], env=env, capture_output=True,
                              text=True, timeout=300)

    sample = mmdream("sample", "dcgan_faces64", f"s3://{bucket}/out/faces.png", "--count", "4")
    assert sample.returncode == 0, sample.stderr
    assert s3.head_object(Bucket=bucket, Key="out/faces.png")["ContentLength"] > 1000
    walk = mmdream("walk", "dcgan_faces64", f"s3://{bucket}/out/walk.mp4", "--audio", f"s3://{bucket}/in/piano.wav",
                   "--fps", "4", "--size", "32", "--progress", "json")
    assert walk.returncode == 0, walk.stderr
    assert f'"output": "s3://{bucket}/out/walk.mp4"' in walk.stderr
    assert s3.head_object(Bucket=bucket, Key="out/walk.mp4")["ContentLength"] > 1000
    same = mmdream("walk", "dcgan_faces64", f"s3://{bucket}/in/piano.wav", "--audio", f"s3://{bucket}/in/piano.wav")
    assert same.returncode == 2 and "is an input" in same.stderr

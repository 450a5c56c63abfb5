"""A job spec compiled into a render plan: the params dataclasses with the spec's values, resolved locations, the
sound's segmenting from `sharding`, the records that bind checkpoints, plain data that pickles; and nothing in the
cluster reads the spec."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

from mmdream.backbones.compute import ComputeParams
from mmdream.dream.image import DreamParams
from mmdream.dream.temporal import VideoParams
from mmdream.jobspec.plan import NetRef, ObjectiveRef, compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.pipelines.film import FilmParams
from mmdream.schedules.drive import AVParams

ROOT = Path(__file__).resolve().parents[2]


def _plan(**spec: object):  # type: ignore[no-untyped-def]
    return compile_plan(parse_job({"input": "in.mp4", "output": "out/film.mp4", **spec}))


def test_defaults_come_from_the_dataclasses() -> None:
    plan = _plan()
    picture = plan.picture
    assert (picture.dream, picture.video, picture.film, picture.compute, plan.av) == \
        (DreamParams(), VideoParams(), FilmParams(), ComputeParams(), AVParams())
    assert plan.kind == "film" and plan.sound is None and plan.theme is None and picture.style is None
    assert picture.backbone == NetRef("vgg16") and picture.objective == ObjectiveRef()


def test_spec_values_reach_the_params() -> None:
    plan = _plan(dream={"steps": 3}, video={"blend": 0.5}, film={"size": 64, "stop": 9}, av={"drive": "rms"},
                 compute={"precision": "bf16"}, objective={"layers": "relu4_3", "channels": "3,5:-1"},
                 sharding={"frames_per_shard": 7, "warmup": 3, "crossfade": 2},
                 resources={"actors": 3, "cpus_per_actor": 2, "gpus_per_actor": 0.5, "retries": 1})
    assert plan.picture.dream.steps == 3 and plan.picture.video.blend == 0.5 and plan.av.drive == "rms"
    assert (plan.picture.film.size, plan.picture.film.stop, plan.picture.compute.precision) == (64, 9, "bf16")
    assert plan.picture.objective == ObjectiveRef(layers="relu4_3", channels=((3, 1.0), (5, -1.0)))
    assert (plan.sharding.frames_per_shard, plan.sharding.warmup, plan.sharding.crossfade) == (7, 3, 2)
    res = plan.resources
    assert (res.actors, res.cpus_per_actor, res.gpus_per_actor, res.retries) == (3, 2, 0.5, 1)


def test_locations_are_resolved() -> None:
    uris = _plan().uris
    assert (uris.work, uris.preview, uris.keep_work) == ("out/.film.mp4.work", "out/film.preview.png", False)
    assert (uris.sound_work, uris.schedules) == ("out/.film.mp4.work/sound", "out/.film.mp4.work/schedules.json")
    assert _plan(preview=False).uris.preview is None
    assert _plan(output="x.y/b").uris.preview == "x.y/b.preview.png"
    assert _plan(output="s3://b/x/film.mp4").uris.work == "s3://b/x/.film.mp4.work"
    seq = _plan(output="frames/%05d.png").uris
    assert (seq.work, seq.preview) == (".frames.work", "frames.preview.png")  # beside the folder
    given = _plan(work="w", preview="p.png", weights="s3://b/weights").uris
    assert (given.work, given.keep_work, given.preview, given.weights) == ("w", True, "p.png", "s3://b/weights")
    assert _plan().with_input("/abs/in.mp4").uris.input == "/abs/in.mp4"


def test_audio_only_jobs_take_their_segmenting_from_sharding() -> None:
    plan = compile_plan(parse_job({"input": "in.flac", "output": "out.flac",
                                   "audio": {"objective": {"class": "Bark"}, "dream": {"steps": 7}},
                                   "sharding": {"audio_segment_s": 4, "audio_overlap_s": 0.5}}))
    sound = plan.sound
    assert plan.kind == "audio" and sound is not None and sound.params.steps == 7
    assert (sound.params.segment_s, sound.params.overlap_s) == (4, 0.5)
    assert sound.backbone == NetRef("yamnet") and sound.objective == ObjectiveRef(class_="Bark")
    assert plan.uris.sound_work == ".out.flac.work/sound"
    assert sound.record == {"backbone": {"name": "yamnet", "variant": None},
                            "objective": {"layers": None, "class": "Bark"}, "theme": None}


def test_a_theme_dreams_both_tracks() -> None:
    plan = _plan(theme={"name": "dog", "sound": ["Howl"]})
    assert plan.theme is not None and plan.theme.sound == ("Dog", "Bark", "Howl") and len(plan.theme.image) == 118
    assert plan.sound is not None and plan.sound.backbone.name == "yamnet"  # the sound is dreamed too
    assert plan.sound.record["theme"] == ["Dog", "Bark", "Howl"]


def test_a_zooms_sound_record_has_no_theme_key() -> None:
    plan = compile_plan(parse_job({"input": "in.png", "output": "z.mp4", "zoom": {"size": 64, "film": {"fps": 10}},
                                   "audio": {"objective": {"class": "Bark"}}}))
    assert plan.kind == "zoom" and plan.zoom is not None and plan.zoom.film.fps == 10 and plan.zoom.size == 64
    assert plan.sound is not None and "theme" not in plan.sound.record


def test_walk_and_style_sections() -> None:
    walk = compile_plan(parse_job({"input": "m.wav", "output": "w.mp4",
                                   "walk": {"generator": "dcgan_faces64", "class": "x", "seed": 3,
                                            "params": {"speed": 0.25}}})).walk
    assert walk is not None and (walk.generator, walk.class_, walk.film.seed, walk.params.speed) == \
        ("dcgan_faces64", "x", 3, 0.25)
    assert walk.record["class"] == "x" and walk.record["params"]["speed"] == 0.25  # as written, by alias
    style = _plan(style={"images": ["a.jpg", "s3://b/s.jpg"], "weights": [0.7, 0.3], "params": {"loss": "w2"}})
    assert style.picture.style is not None and style.picture.style.images == ("a.jpg", "s3://b/s.jpg")
    assert style.picture.style.weights == (0.7, 0.3) and style.picture.style.params.loss == "w2"


def test_the_record_is_the_spec_less_where_files_go() -> None:
    job = parse_job({"input": "in.mp4", "output": "out.mp4", "work": "w", "dream": {"steps": 4}})
    record = compile_plan(job).record
    assert record["dream"]["steps"] == 4 and record["backbone"] == {"name": "vgg16", "variant": None}
    assert not {"input", "output", "work", "weights", "preview", "resources"} & set(record)


def test_a_plan_is_plain_picklable_data() -> None:
    plan = _plan(theme="dog", style=None, av={"drive": "rms"})
    assert pickle.loads(pickle.dumps(plan)) == plan


def test_the_cluster_never_reads_the_spec() -> None:
    """Only the Jobs API client (which validates a YAML before sending it) imports the schema."""
    readers = []
    for path in sorted((ROOT / "cluster").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "mmdream.jobspec.schema":
                readers.append(path.name)
    assert readers == ["jobs_api.py"]

"""What ``mmdream render`` and ``mmdream submit`` check before any work starts (before Ray, before a file is written).

:func:`check_job` resolves the job's input (a ``sample:`` is fetched once), checks it is readable and has the
streams the job needs (a picture to dream, a sound to dream or to follow), that the output, preview and work
locations can be written and are not the input, that the settings fit the input (frame range, resources), and
loads every network the job needs, downloading missing weights into the cache, then builds each objective on it
(layers, channels, classes, themes, guide and style images). Any failure is an :class:`~mmdream.errors.MmdreamError`
(one line, exit status 2); nothing is written but the caches. This module never imports Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmdream.errors import MediaError, ParameterError
from mmdream.jobspec.plan import RenderPlan
from mmdream.media import storage

Say = Callable[[str], None]


def check_job(plan: RenderPlan, *, local_ray: bool, say: Say | None = None) -> None:
    """Everything that can be known wrong about a job (its ``plan``) before it starts; ``local_ray``: it will run
    on a Ray started here (so this machine's GPUs are the ones it gets). ``say``: where the lines about downloads
    go."""
    input_path = _check_input(plan, say)
    _check_locations(plan, input_path)
    size = _check_settings(plan, input_path, local_ray)
    _check_networks(plan, size)


def _check_input(plan: RenderPlan, say: Say | None) -> str | None:
    """The job's input as a local path (None for ``s3://``: its existence is checked, its streams later, before
    Ray starts, once the driver has fetched it); a file must be readable."""
    from mmdream.media.samples import SCHEME, sample_path
    from mmdream.media.sequence import is_sequence

    uri = plan.uris.input
    if uri.startswith(SCHEME):
        return str(sample_path(uri[len(SCHEME):], say=say))
    if storage.is_s3(uri):
        if storage.size(uri) is None:
            raise MediaError(f"input {uri} does not exist; check the bucket and key")
        return None
    if is_sequence(uri) and plan.kind == "film":
        return uri  # a frame sequence: read when the film is planned
    path = Path(uri)
    if not path.is_file():
        raise MediaError(f"input {uri} {'is a folder' if path.is_dir() else 'does not exist'}; give the job's "
                         "input file (a film or a frame sequence, a picture for zooms, a sound for audio and walk "
                         "jobs)")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise MediaError(f"input {uri} cannot be read ({exc.strerror}); check its permissions") from None
    return str(path)


def _needs_sound(plan: RenderPlan) -> str | None:
    """Why the job needs its input's (or its named) sound, or None."""
    if plan.kind in ("audio", "walk"):
        return f"is {'an audio' if plan.kind == 'audio' else 'a walk'} job"
    if plan.sound is not None:
        return "dreams its sound (an audio section or a theme)"
    av = plan.av
    if av.drive != "none" or av.channels_follow != "none":
        return f"follows its sound (av.drive: {av.drive}, av.channels_follow: {av.channels_follow})"
    return None


def _check_locations(plan: RenderPlan, input_path: str | None) -> None:
    """Output, preview and work locations: none is the input; local ones can be created and written."""
    from mmdream.media.files import check_not_input, check_writable
    from mmdream.media.sequence import is_sequence
    from mmdream.media.video import check_video_suffix

    uris = plan.uris
    sequence_out = plan.kind == "film" and (is_sequence(uris.output) or uris.output.endswith("/"))
    if plan.kind == "film" and not sequence_out:
        check_video_suffix(uris.output)
    preview = uris.preview
    if preview is not None and not preview.lower().endswith(".png"):
        raise ParameterError(f"preview {preview} must name a .png file (or set preview: false)")
    inputs = [uris.input] + ([input_path] if input_path else [])
    for what, uri in (("output", uris.output), ("preview", preview), ("work location", uris.work)):
        if uri is None:
            continue
        if uri in inputs:
            raise ParameterError(f"{what} {uri} is the input; choose another (inputs are never overwritten)")
        if storage.is_s3(uri):
            bucket, _ = storage.split_s3(uri)
            storage.exists(f"s3://{bucket}/")  # a missing bucket, bad credentials or endpoint: raised here
            continue
        if input_path is not None:
            check_not_input(uri, input_path)
        if what == "work location" or (what == "output" and sequence_out):
            _check_folder(Path(uri).parent if what == "output" and is_sequence(uri) and not Path(uri).is_dir()
                          else Path(uri), what)
        else:
            check_writable(uri, what)


def _check_folder(path: Path, what: str) -> None:
    """A folder: an existing one must be a writable folder; a new one must be creatable."""
    from mmdream.media.files import check_writable

    if path.exists() and not path.is_dir():
        raise MediaError(f"{what} {path} is a file; give a folder")
    check_writable(path / ".probe", what)


def _check_settings(plan: RenderPlan, input_path: str | None, local_ray: bool) -> int:
    """Settings that depend on the input or the machine, and the streams the job needs; returns the picture's
    longer side for the objectives."""
    from mmdream.media.audio import stream_audio

    res = plan.resources
    if local_ray and res.gpus_per_actor > 0:
        import torch

        if torch.cuda.device_count() == 0:
            raise ParameterError(f"resources.gpus_per_actor: {res.gpus_per_actor:g}, but this machine has no GPU "
                                 "for the local Ray; set it to 0 or give --address of a cluster with GPUs")
    why = _needs_sound(plan)
    if plan.zoom is not None:
        sound = plan.zoom.audio
        if sound is not None and storage.is_s3(sound):
            if storage.size(sound) is None:
                raise MediaError(f"zoom.audio {sound} does not exist; check the bucket and key")
        elif why is not None and (sound is not None or input_path is not None):
            stream_audio(sound or input_path)  # type: ignore[arg-type]
        return plan.zoom.size or 512
    if input_path is None:  # on S3: the driver reads it (and fails on a bad one) before Ray starts
        return plan.picture.film.size or 512
    if plan.kind == "film":
        from mmdream.pipelines.film import plan_film

        film = plan_film(input_path, plan.picture.film)  # no picture, an empty frame range: refused here
        if why is not None and film.info.audio is None:
            raise MediaError(f"input {plan.uris.input} has no audio stream, but the job {why}; give a film with "
                             "sound (or film.audio_file) or remove that")
        return max(film.width, film.height)
    if why is not None:
        stream_audio(input_path)  # a MediaError naming the file when it has no sound
    return plan.walk.film.size if plan.walk is not None else 512


def _check_networks(plan: RenderPlan, size: int) -> None:
    """Load every network the job needs (weights downloaded into the cache when missing, every file read and
    fitted) and build its objectives on it; then let them go (the actors load their own)."""
    from mmdream.backbones import load_backbone
    from mmdream.jobspec.build import build_job_objective, build_job_sound_objective, load_styles

    weights = plan.uris.weights
    if plan.walk is not None:
        from mmdream.backbones.generators import load_generator

        generator = load_generator(plan.walk.generator, weights_dir=weights)
        if plan.walk.class_ is not None:
            generator.resolve_class(plan.walk.class_)
        return
    if plan.kind in ("film", "zoom"):
        picture = plan.picture
        backbone = load_backbone(picture.backbone.name, variant=picture.backbone.variant, weights_dir=weights)
        if backbone.modality != "image":
            raise ParameterError(f"backbone: {picture.backbone.name} hears sounds; dream the picture with an image "
                                 "backbone (the sound's goes under audio.backbone)")
        if picture.style is not None:
            load_styles(picture.style)
        else:
            build_job_objective(picture.objective, backbone, size, plan.theme)
    if plan.sound is not None:
        net = plan.sound.backbone
        sound = load_backbone(net.name, variant=net.variant, weights_dir=weights)
        if sound.modality != "audio":
            raise ParameterError(f"audio.backbone: {net.name} is an image backbone; dream sounds with an "
                                 "audio one (yamnet)")
        build_job_sound_objective(plan.sound, plan.theme, sound)

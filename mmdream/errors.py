"""One exception hierarchy for mmdream; the CLI prints these as one line and exits 2."""


class MmdreamError(Exception):
    """Base of every error mmdream raises on purpose: the message says what was wrong and what to do."""


class ParameterError(MmdreamError, ValueError):
    """An option or argument is invalid (unknown name, out of range, inconsistent)."""


class MediaError(MmdreamError):
    """An input file is missing, unreadable or of the wrong kind, or an output cannot be written."""


class WeightsError(MmdreamError):
    """Pretrained weights are missing, corrupt, or do not fit the module."""


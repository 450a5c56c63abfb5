"""mmdream: multimodal Deep Dreams — pictures, sounds and films dreamed with convolutional networks."""

__version__ = "0.1.0"

"""Media I/O: images, audio, video and storage locations. Outputs are written atomically."""

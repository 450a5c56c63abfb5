"""Pure tensor operations shared by the dream algorithms (no files, no globals)."""

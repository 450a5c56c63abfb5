"""Per-frame schedules from sound (drive strength, chroma groups) and latent walks."""

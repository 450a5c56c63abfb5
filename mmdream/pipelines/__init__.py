"""Files in, files out, resumable: films, soundtracks, long sounds, zooms, drafts, classification."""

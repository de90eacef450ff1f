"""Developer tools (not part of the vqa_jax package)."""

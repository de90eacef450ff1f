"""The shipped configs (installed as the package vqa_jax.configs; see vqa_jax/config/config_files.py)."""

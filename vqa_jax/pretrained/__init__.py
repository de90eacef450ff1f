"""Named pretrained models: `registry` (upstream files, configs, reported metrics), `download`
(resumable, locked, hash-checked fetches; offline mode; mirrors), `pth_reader` (torch-free `.pth`
reading), `cache` (fetch and convert once into $VQA_JAX_CACHE/models/) and `models_command`
(`vqa-jax models`). Nothing here imports torch."""

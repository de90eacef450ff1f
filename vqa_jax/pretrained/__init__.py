"""Named pretrained models: `registry` (upstream files, configs, reported metrics), `download`
(resumable, locked, hash-checked fetches; offline mode; mirrors), `pth_reader` (torch-free `.pth`
reading), `cache` (fetch and convert once into $VQA_JAX_CACHE/models/; the listing) and
`__main__` (`vqa-jax models`, `python -m vqa_jax.pretrained`). Nothing here imports torch."""

"""Weight loss-landscape and generalization-gap analysis (paper §3: the likely protocol).

Modules: `directions` (filter-normalised random directions), `fixed_set` (clips sampled once),
`surface` (many perturbed points in one jitted program), `sharpness` (worst case in the AWP ball,
Hessian eigenvalue and trace), `gap` (generalization gap, train minus test, and its pooled and
within-seed correlations), `analysis` (everything measured on one checkpoint), `plots` and
`figures` (PNGs), `__main__` (`python -m vqa_jax.landscape`). The baseline / AWP / RWP /
weight-decay experiment built on these is `vqa_jax.study`. Nothing here imports TensorFlow.
"""

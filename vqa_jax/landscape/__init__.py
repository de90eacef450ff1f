"""Weight loss-landscape and generalization-gap analysis (issue 7; paper §3: the likely protocol).

Modules: `directions` (filter-normalised random directions), `fixed_set` (clips sampled once),
`surface` (many perturbed points in one jitted program), `sharpness` (worst case in the AWP ball,
Hessian eigenvalue and trace), `gap` (generalization gap, train minus test, and its pooled and
within-seed correlations), `analysis` (everything measured on one checkpoint), `plots` and
`figures` (PNGs), `cli` (`python -m vqa_jax.landscape`), `study`, `study_records` and
`study_report` (the baseline / AWP / RWP / weight-decay experiment; its report can be rebuilt
from the stored runs). Nothing here imports TensorFlow except `study`, which trains through
`trainer.train`.
"""

"""The paper's three claims tested so that a null result means something.

  python -m vqa_jax.study --out=/tmp/vqa_study [--config=study:tiny] [--seeds=0,1] ...
  python -m vqa_jax.study --out=/tmp/vqa_study --report_only

The design (`design`: seeds, variants, budgets, pre-registered claims, from configs/study.py's
`study` section) is registered in OUT/design.json before anything runs. A pretext stage
(`pretext`: content and camera-motion classification on another data seed, or a given checkpoint)
gives the starting backbone; per seed every variant (`variant_runs`: baseline, AWP and RWP at
γ = 1e-4, 1e-3, 3e-3, 1e-2, weight decay 5e-4 and 0.5) runs the cross-dataset and fine-tuning
protocols (`protocols`), each paired with the same seed's baseline: same initial weights, batches
and dropout keys (`fingerprints`, checked from digests). Each cross run records whether its
treatment took (`treatment`: flatness at the training radii, realised perturbation). The report
(`report`, `forest`) answers each claim with paired t and exact Wilcoxon tests, Holm's correction
and the minimum detectable effect (`significance`, over `comparisons` of the stored records), and
links the landscape report of the cross runs (`flatness_rows`, `flatness_report`).
"""

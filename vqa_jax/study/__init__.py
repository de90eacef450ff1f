"""The paper's three claims in the paper's regime, as one command (issue 21).

  python -m vqa_jax.study --out=/tmp/vqa_study [--seeds=0,1,2,3,4] [--steps=300] ...
  python -m vqa_jax.study --out=/tmp/vqa_study --report_only

A pretraining stage (`pretrain`, or a given checkpoint) gives the starting weights; per seed every
variant (baseline, AWP at the paper's γ = 1e-4 and at 1e-3, RWP, weight decay) then runs the
cross-dataset protocol and the fine-tuning protocol (`protocols`), each paired with the same seed's
baseline: same initial weights, batches and dropout keys (`pairing`, checked from digests). The
report (`report`, `forest`) gives paired deltas with bootstrap intervals in absolute and relative
terms (`paired`, `records`) and the flatness measures of the cross-dataset runs with their
within-seed correlations (`flatness_rows`, `flatness_report`, measured by `vqa_jax.landscape`).
`variant_runs` holds the variants and one cross-dataset run; `runner` runs it all; `cli` is the
command line. (It replaces the earlier `python -m vqa_jax.landscape.study`.)
"""

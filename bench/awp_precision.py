"""AWP in reduced precision (issue 31): how well each perturbed-pass mode reproduces float32 AWP,
and what it costs.

Usage (from the repository root):
  PYTHONPATH=. .venv/bin/python bench/awp_precision.py accuracy [--steps 1000] [--out DIR]
  PYTHONPATH=. .venv/bin/python bench/awp_precision.py walltime [--repeats 15] [--out DIR]
  PYTHONPATH=. .venv/bin/python bench/awp_precision.py cost [--batch 16] [--out DIR]
  PYTHONPATH=. .venv/bin/python bench/awp_precision.py radii [--out DIR]

accuracy  trains the demo model (configs/demo.py, float32, its AWP γ = 1e-3) for `--steps` steps on
          the embedded synthetic data, takes the next batch of 16 real clips, and compares, at
          γ = 1e-4 and 1e-3, each mode with bf16 compute against float32 at the highest matmul
          precision (both passes). All modes get the same δ (the reference's, from the float32
          clean gradient), so the rows isolate the perturbed pass's arithmetic:
            loss change   L(w+δ) − L(w), each mode's own clean and perturbed pass;
            grad change   g(w+δ) − g(w): cosine with the reference's and norm ratio;
            AWP gradient  g(w+δ) itself: cosine and relative error ‖g − g_ref‖/‖g_ref‖;
            from f32 w    L(w+δ) − L_ref(w), g(w+δ) − g_ref(w): the perturbed pass against the
                          reference's clean point (rel. error, cosine);
            realised      perturb_precision.realised_metrics of δ in bf16 per mode.
          Modes: bf16 cast | split | float32 (perturbed pass float32-highest, clean pass bf16), and
          two diagnostics with float32 activations (model float32-highest) but bf16-rounded
          kernels: 'f32 act, bf16 w (cast)' (perturbed at bf16(w+δ)) and '... (split)' (at
          bf16(w) + bf16(δ)). They say whether the weights' or the activations' rounding limits
          the gradient change.
walltime  the jitted AWP train step of the demo model (bf16 compute, batch 16) per mode, steps
          interleaved mode by mode, median of `--repeats` rounds; ratios to cast.
radii     the realised cosine and norm ratio (perturb_precision.realised_metrics) of the AWP δ of
          one 4096x384 N(0, 0.05) kernel along a Gaussian gradient, per compute setting and γ
          (the issue's first table; TF32 emulated in numpy).
cost      XLA cost analysis (flops, bytes accessed) of the compiled AWP train step of FAST-VQA-B
          (configs/fast_vqa_b.py, bf16 compute) at `--batch`, lowered and compiled on the CPU
          from abstract shapes (nothing runs), per mode.
Each part writes <out>/<part>.json and prints a Markdown table.
"""

import argparse
import json
import os
import pickle
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from vqa_jax import families
from vqa_jax import perturb
from vqa_jax.config import perturb_config
from vqa_jax import perturb_precision
from vqa_jax.config import config_files
from vqa_jax.data import sources
from vqa_jax.runtime import sharding
from vqa_jax.training import optim
from vqa_jax.training import train_step
from vqa_jax.training import trainer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fast_vqa_b_cost  # pylint: disable=g-import-not-at-top,wrong-import-position

MODES = ("cast", "split", "float32")
GAMMAS = (1e-4, 1e-3)
DEFAULT_OUT = "bench/results/awp_precision"


def family_at(config, dtype: str, matmul: str = "default") -> families.Family:
  """The config's family with the model computing in `dtype` at `matmul` precision."""
  changed = config.copy_and_resolve_references()
  changed.model.dtype = dtype
  changed.model.matmul_precision = matmul
  return families.build(changed)


def _split_like(vector: np.ndarray, tree) -> list:
  """`vector` cut into float32 arrays shaped like `tree`'s leaves (flat's inverse)."""
  leaves, out, start = jax.tree.leaves(tree), [], 0
  for leaf in leaves:
    out.append(vector[start:start + leaf.size].reshape(leaf.shape).astype(np.float32))
    start += leaf.size
  return out


def flat(tree) -> np.ndarray:
  """All leaves of a tree as one float64 vector."""
  return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(tree)])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
  """The cosine of two vectors."""
  return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
  """‖a − b‖ / ‖b‖."""
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def round_kernels(params, mask):
  """params with the masked kernels rounded to bf16 (kept float32)."""
  return jax.tree_util.tree_map_with_path(
      lambda path, m, w: (np.asarray(w).astype(ml_dtypes.bfloat16).astype(np.float32)
                          if m and perturb_precision.CAST_LEAF_NAMES & {str(path[-1].key)} else w),
      mask, params)


def trained_params_and_batch(config, steps: int):
  """(params after `steps` steps of the demo's training, the next batch of 16 clips, seconds)."""
  mesh = sharding.make_mesh()
  splits = trainer.prepare_splits(config, sources.load_splits(config.data))
  family = families.build(config)
  tx = optim.make_optimizer(config.train)
  perturb_cfg = perturb_config.PerturbConfig.from_config(config.perturb)
  state = trainer.init_state(family, tx, perturb_cfg, config.seed, mesh)
  step_fn = jax.jit(train_step.make_train_step(family.loss_fn, tx, perturb_cfg,
                                               config.train.ema_decay, stateful=True))
  start, key = time.perf_counter(), jax.random.key(config.seed)
  batches = trainer.train_batches(config, splits[config.data.train_split], mesh)
  try:
    for i, (_, device_batch) in enumerate(batches):
      if i == steps:
        batch = jax.device_get(device_batch)
        break
      state, metrics = step_fn(state, device_batch, key)
      if (i + 1) % 100 == 0:
        print(f"  step {i + 1}: loss {float(metrics['loss']):.4f}", flush=True)
  finally:
    batches.close()
  return jax.device_get(state.params), batch, time.perf_counter() - start


def accuracy(args) -> dict:
  """The comparison table (module docstring) as a dict of rows."""
  config = config_files.load("demo")
  cache = os.path.join(args.out, f"trained_{args.steps}.pkl")  # a rerun skips the training
  if os.path.exists(cache):
    with open(cache, "rb") as f:
      params, batch, train_s = pickle.load(f)
  else:
    params, batch, train_s = trained_params_and_batch(config, args.steps)
    os.makedirs(args.out, exist_ok=True)
    with open(cache, "wb") as f:
      pickle.dump((params, batch, train_s), f)
  print(f"trained {args.steps} steps in {train_s:.0f} s", flush=True)
  ref = family_at(config, "float32", "highest")
  low = family_at(config, "bfloat16")
  mask = perturb.weight_mask(params)
  rng = jax.random.key(7)
  compiled = {}  # one jitted function per (pass, family, precision); δ and γ are arguments

  def clean(fam, p):
    key = ("clean", id(fam))
    if key not in compiled:
      compiled[key] = jax.jit(jax.value_and_grad(lambda q: fam.loss_fn(q, None, batch, rng),
                                                 has_aux=True))
    (loss, _), grads = compiled[key](p)
    return float(loss), flat(grads)

  def perturbed(fam, p, delta, precision, float32_fam=None):
    key = ("perturbed", id(fam), precision)
    if key not in compiled:
      f32_loss = float32_fam.loss_fn if float32_fam else None
      compiled[key] = jax.jit(lambda q, d: perturb.value_and_grad_at(
          fam.loss_fn, q, d, None, batch, rng=rng, mask=mask, has_aux=True, precision=precision,
          float32_loss_fn=f32_loss))
    (loss, _), grads = compiled[key](p, delta)
    return float(loss), flat(grads)

  def awp_delta(grads_tree, gamma):
    """The reference's AWP δ along `grads_tree` (perturb's awp kind, no model pass)."""
    awp_kind = perturb.make_perturbation("awp", mask)
    return jax.device_get(awp_kind.project(params, awp_kind.step(params, grads_tree, gamma), gamma))

  ref_loss, ref_grad = clean(ref, params)
  ref_grad_tree = jax.tree.unflatten(jax.tree.structure(params), _split_like(ref_grad, params))
  low_loss, low_grad = clean(low, params)
  rounded = round_kernels(params, mask)
  rounded_loss, rounded_grad = clean(ref, rounded)
  out = {"steps": args.steps, "train_seconds": train_s, "batch": int(batch["label"].shape[0]),
         "clean": {"bf16": {"grad_cosine": cosine(low_grad, ref_grad),
                            "grad_norm_ratio": float(np.linalg.norm(low_grad) /
                                                     np.linalg.norm(ref_grad)),
                            "loss": low_loss},
                   "f32 act, bf16 w": {"grad_cosine": cosine(rounded_grad, ref_grad),
                                       "loss": rounded_loss},
                   "reference": {"loss": ref_loss}},
         "gammas": {}}
  for gamma in GAMMAS:
    delta = awp_delta(ref_grad_tree, gamma)
    ref_p_loss, ref_p_grad = perturbed(ref, params, delta, "cast")
    ref_dl, ref_dg = ref_p_loss - ref_loss, ref_p_grad - ref_grad
    rounded_delta = round_kernels(jax.tree.map(lambda w, d: np.asarray(w) + np.asarray(d),
                                               params, delta), mask)
    rows = {}
    variants = {
        "cast": (low, params, delta, "cast", (low_loss, low_grad)),
        "split": (low, params, delta, "split", (low_loss, low_grad)),
        "float32": (low, params, delta, "float32", (low_loss, low_grad)),
        "f32 act, bf16 w (cast)": (ref, rounded, jax.tree.map(
            lambda a, b: np.asarray(a) - np.asarray(b), rounded_delta, rounded), "cast",
                                   (rounded_loss, rounded_grad)),
        "f32 act, bf16 w (split)": (ref, rounded, round_kernels(delta, mask), "cast",
                                    (rounded_loss, rounded_grad)),
    }
    for name, (fam, p, d, precision, (c_loss, c_grad)) in variants.items():
      p_loss, p_grad = perturbed(fam, p, d, precision, ref if precision == "float32" else None)
      dl, dg = p_loss - c_loss, p_grad - c_grad
      # The same changes measured from the reference's clean point: what the perturbed pass adds
      # to the float32 clean loss and gradient (a float32 pass after a bf16 clean pass included).
      dl_ref, dg_ref = p_loss - ref_loss, p_grad - ref_grad
      rows[name] = {"loss_change": dl, "loss_change_rel_err": abs(dl - ref_dl) / abs(ref_dl),
                    "from_ref_clean_loss_rel_err": abs(dl_ref - ref_dl) / abs(ref_dl),
                    "from_ref_clean_grad_cosine": cosine(dg_ref, ref_dg),
                    "grad_change_cosine": cosine(dg, ref_dg),
                    "grad_change_norm_ratio": float(np.linalg.norm(dg) / np.linalg.norm(ref_dg)),
                    "awp_grad_cosine": cosine(p_grad, ref_p_grad),
                    "awp_grad_rel_err": rel_err(p_grad, ref_p_grad)}
      if name in MODES:
        rows[name].update({k: float(v) for k, v in perturb_precision.realised_metrics(
            params, delta, mask, jnp.bfloat16, name).items()})
    out["gammas"][str(gamma)] = {"reference": {"loss_change": ref_dl,
                                               "grad_change_norm": float(np.linalg.norm(ref_dg))},
                                 "modes": rows}
  return out


def accuracy_table(out: dict) -> str:
  """The accuracy part's result as a Markdown table."""
  lines = ["| γ | mode | realised cos / ratio | ΔL = L(w+δ)−L(w) | ΔL rel. err | Δg cosine | "
           "Δg norm ratio | g(w+δ) cosine / rel. err | from f32 w: ΔL rel. err / Δg cosine |",
           "|---|---|---|---|---|---|---|---|---|"]
  for gamma, entry in out["gammas"].items():
    lines.append(f"| {gamma} | f32-highest (reference) | 1 / 1 | "
                 f"{entry['reference']['loss_change']:.3e} | 0 | 1 | 1 | 1 / 0 | 0 / 1 |")
    for name, r in entry["modes"].items():
      realised = (f"{r['realised_cosine']:.3f} / {r['realised_norm_ratio']:.2f}"
                  if "realised_cosine" in r else "")
      lines.append(
          f"| {gamma} | {name} | {realised} | {r['loss_change']:.3e} | "
          f"{100 * r['loss_change_rel_err']:.1f}% | {r['grad_change_cosine']:.3f} | "
          f"{r['grad_change_norm_ratio']:.2f} | {r['awp_grad_cosine']:.5f} / "
          f"{r['awp_grad_rel_err']:.4f} | {100 * r['from_ref_clean_loss_rel_err']:.1f}% / "
          f"{r['from_ref_clean_grad_cosine']:.3f} |")
  c = out["clean"]
  lines.append(f"\nClean gradient, bf16 vs f32-highest: cosine {c['bf16']['grad_cosine']:.4f}, norm "
               f"{c['bf16']['grad_norm_ratio']:.3f}x; f32 activations with bf16 kernels: cosine "
               f"{c['f32 act, bf16 w']['grad_cosine']:.4f}.")
  return "\n".join(lines)


def bf16_awp_step(config, precision: str):
  """(AWP train step of `config`'s model in bf16 at γ = 1e-4 with `precision`, family, tx,
  perturbation config); `config` is copied, not changed."""
  config = config.copy_and_resolve_references()
  config.model.dtype = "bfloat16"
  config.perturb.precision = precision
  config.perturb.gamma = 1e-4
  family = families.build(config)
  tx = optim.make_optimizer(config.train)
  perturb_cfg = perturb_config.PerturbConfig.from_config(config.perturb)
  step = train_step.make_train_step(family.loss_fn, tx, perturb_cfg, config.train.ema_decay,
                                    stateful=True, **families.perturbed_pass_options(config))
  return step, family, tx, perturb_cfg


def demo_awp_step(config, precision: str):
  """(jitted AWP train step of the demo model in bf16 with `precision`, its initial state)."""
  step, family, tx, perturb_cfg = bf16_awp_step(config, precision)
  params, model_state = family.init_variables(jax.random.key(0))
  return jax.jit(step), train_step.create_train_state(params, tx, perturb_cfg, model_state)


def walltime(args) -> dict:
  """Seconds per AWP step of the demo model in bf16 per mode, interleaved; ratios to cast."""
  config = config_files.load("demo")
  s = config.sampling
  rng = np.random.default_rng(0)
  batch = jax.device_put({
      "video": rng.integers(0, 256, (16, s.clip_len, s.grid * s.patch, s.grid * s.patch, 3),
                            dtype=np.uint8),
      "label": rng.normal(size=16).astype(np.float32)})
  key = jax.random.key(1)
  steps = {}
  for mode in MODES:
    step, state = demo_awp_step(config, mode)
    for _ in range(2):  # compile and warm up
      state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    steps[mode] = [step, state]
  times = {mode: [] for mode in MODES}
  for _ in range(args.repeats):
    for mode in MODES:
      step, state = steps[mode]
      start = time.perf_counter()
      for _ in range(args.block):
        state, metrics = step(state, batch, key)
      jax.block_until_ready((state, metrics))
      times[mode].append((time.perf_counter() - start) / args.block)
      steps[mode][1] = state
  median = {mode: statistics.median(t) for mode, t in times.items()}
  return {"repeats": args.repeats, "block": args.block, "seconds_per_step": median,
          "ratio_to_cast": {m: median[m] / median["cast"] for m in MODES},
          "load_average": os.getloadavg()}


def cost(args) -> dict:
  """XLA flops and bytes accessed of FAST-VQA-B's compiled bf16 AWP step per mode (no run)."""
  config = config_files.load("fast_vqa_b")
  s = config.sampling
  size = s.grid * s.patch
  batch = {"video": jax.ShapeDtypeStruct((args.batch, s.clip_len, size, size, 3), jnp.uint8),
           "label": jax.ShapeDtypeStruct((args.batch,), jnp.float32)}
  out = {"batch": args.batch, "modes": {}}
  for mode in args.modes.split(","):
    step, _, tx, perturb_cfg = bf16_awp_step(config, mode)
    abstract = families.abstract_variables(config.model)
    state = jax.eval_shape(lambda p: train_step.create_train_state(p, tx, perturb_cfg),
                           abstract["params"])
    start = time.perf_counter()
    compiled = jax.jit(step).lower(state, batch, jax.random.key(0)).compile()
    figures = fast_vqa_b_cost.xla_figures(compiled)
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    figures["xla_bytes_accessed"] = float(analysis.get("bytes accessed", float("nan")))
    figures["compile_seconds"] = time.perf_counter() - start
    out["modes"][mode] = figures
    print(mode, json.dumps(figures), flush=True)
  base = out["modes"].get("cast")
  if base:
    for figures in out["modes"].values():
      figures["flops_vs_cast"] = figures["xla_flops"] / base["xla_flops"]
      figures["bytes_vs_cast"] = figures["xla_bytes_accessed"] / base["xla_bytes_accessed"]
  return out


def tf32(x: np.ndarray) -> np.ndarray:
  """float32 rounded to TF32's 10-bit mantissa (round to nearest even), kept as float32."""
  bits = np.asarray(x, np.float32).view(np.uint32)
  bits = (bits + 0xFFF + ((bits >> 13) & 1)) & np.uint32(0xFFFFE000)
  return bits.view(np.float32)


def radii(args) -> dict:
  """Realised cosine / norm ratio of the AWP δ of one 4096x384 N(0, 0.05) kernel per setting."""
  del args
  rng = np.random.default_rng(0)
  w = rng.normal(0, 0.05, (4096, 384)).astype(np.float32)
  g = rng.normal(size=w.shape).astype(np.float32)
  params, mask = {"kernel": w}, {"kernel": True}
  out = {}
  for gamma in (1e-4, 1e-3, 1e-2):
    delta = {"kernel": np.asarray(perturb.awp(params, {"kernel": g}, gamma, mask)["kernel"]) - w}
    row = {}
    for name, dtype, precision in (("bf16 cast", jnp.bfloat16, "cast"),
                                   ("bf16 split", jnp.bfloat16, "split"),
                                   ("fp16 cast", jnp.float16, "cast"),
                                   ("float32", jnp.float32, "cast")):
      got = perturb_precision.realised_metrics(params, delta, mask, dtype, precision)
      row[name] = {k: float(v) for k, v in got.items()}
    d = delta["kernel"].astype(np.float64)
    realised = (tf32(w + delta["kernel"]) - tf32(w)).astype(np.float64)
    row["tf32 cast (numpy)"] = {
        "realised_cosine": float(realised.ravel() @ d.ravel() / np.linalg.norm(realised) /
                                 np.linalg.norm(d)),
        "realised_norm_ratio": float(np.linalg.norm(realised) / np.linalg.norm(d))}
    out[str(gamma)] = row
  return out


def main():
  """Runs one part and writes its JSON (module docstring)."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("part", choices=("accuracy", "walltime", "cost", "radii"))
  parser.add_argument("--steps", type=int, default=1000, help="accuracy: demo training steps")
  parser.add_argument("--repeats", type=int, default=15, help="walltime: rounds")
  parser.add_argument("--block", type=int, default=3, help="walltime: steps per timed block")
  parser.add_argument("--batch", type=int, default=16, help="cost: FAST-VQA-B batch")
  parser.add_argument("--modes", default=",".join(MODES), help="cost: modes to compile")
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args()
  result = {"accuracy": accuracy, "walltime": walltime, "cost": cost,
            "radii": radii}[args.part](args)
  result.update(jax_version=jax.__version__, device=jax.devices()[0].device_kind,
                date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, f"{args.part}.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2, sort_keys=True)
  if args.part == "accuracy":
    print(accuracy_table(result))
  else:
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
  main()

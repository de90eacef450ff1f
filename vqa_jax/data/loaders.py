"""The two input loaders behind one call: `data.loader` 'tf_data' (default) or 'grain'.

Both read the same `element_plan.ElementPlan` and yield bit-identical batches. TensorFlow is imported
only when 'tf_data' is asked for, so the 'grain' path runs where TensorFlow is absent.
"""

from collections.abc import Iterator

import numpy as np

from vqa_jax.config import validation
from vqa_jax.data import element_plan


def batches(plan: element_plan.ElementPlan, loader: str = "tf_data",
            workers: int = -1) -> Iterator[dict[str, np.ndarray]]:
  """The plan's batches as numpy dicts from `loader` with `workers` decode workers.

  A generator: close it (or exhaust it) to stop the loader's threads or processes.
  """
  validation.check_loader(loader)
  if loader == "grain":
    from vqa_jax.data import grain_pipeline  # pylint: disable=g-import-not-at-top
    return grain_pipeline.batches(plan, workers)
  from vqa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top  (imports TF)
  return input_pipeline.batches(plan, workers)

"""The two input loaders behind one call: `data.loader` 'tf_data' (default) or 'grain'.

`data.decoder` 'nvdec' / 'hybrid' puts NVDEC beside (or instead of) the loader's CPU workers
(`nvdec_pipeline`).

Both read the same `element_plan.ElementPlan` and yield bit-identical batches. TensorFlow is imported
only when 'tf_data' is asked for, so the 'grain' path runs where TensorFlow is absent.
"""

from collections.abc import Iterator
from typing import Any

import numpy as np

from vqa_jax.config import validation
from vqa_jax.data import element_plan


def batches(plan: element_plan.ElementPlan, loader: str = "tf_data", workers: int = -1,
            decoding: Any = None) -> Iterator[dict[str, np.ndarray]]:
  """The plan's batches as numpy dicts from `loader` with `workers` decode workers.

  With `decoding` (an `nvdec_pipeline.Decoding` whose decoder is 'nvdec' or 'hybrid') NVDEC
  decodes its share of each batch and the batch's `video` is a device array.
  A generator: close it (or exhaust it) to stop the loader's threads or processes.
  """
  validation.check_loader(loader)
  if decoding is not None and decoding.decoder != "opencv":
    from vqa_jax.data import nvdec_pipeline  # pylint: disable=g-import-not-at-top  (imports jax)
    return nvdec_pipeline.batches(plan, decoding, lambda p: batches(p, loader, workers))
  if loader == "grain":
    from vqa_jax.data import grain_pipeline  # pylint: disable=g-import-not-at-top
    return grain_pipeline.batches(plan, workers)
  from vqa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top  (imports TF)
  return input_pipeline.batches(plan, workers)

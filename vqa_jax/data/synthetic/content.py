"""The content kinds of the synthetic videos: name -> renderer (rng, h, w, num_frames) -> frames.

Also each video's pretext labels, read from the generator's own parameters: its content class and
its camera motion ('static' for domain A's moving objects; 'pan' or 'zoom' for domain B, the noise
field's choice being the renderer's own first draw from the video's render stream).
"""

import numpy as np

from vqa_jax.data.synthetic import camera
from vqa_jax.data.synthetic import sprites

CONTENT_RENDERERS = {
    "shapes": sprites.render_shapes,
    "gratings": sprites.render_gratings,
    "checkers": sprites.render_checkers,
    "landscape_pan": camera.render_landscape_pan,
    "landscape_zoom": camera.render_landscape_zoom,
    "noise_field": camera.render_noise_field,
}
RENDER_STREAM = 1  # a video's content is rendered from default_rng([seed, RENDER_STREAM])
CONTENT_CLASSES = tuple(CONTENT_RENDERERS)
CAMERA_MOTIONS = ("static", "pan", "zoom")


def render_rng(seed: int) -> np.random.Generator:
  """The generator that renders the content of the video of `seed`."""
  return np.random.default_rng([seed, RENDER_STREAM])


def camera_motion(content: str, seed: int) -> str:
  """The camera motion of the video of `content` and `seed`, as its renderer draws it."""
  if content in ("shapes", "gratings", "checkers"):
    return "static"
  if content == "noise_field":
    return "zoom" if camera.noise_field_zooms(render_rng(seed)) else "pan"
  return {"landscape_pan": "pan", "landscape_zoom": "zoom"}[content]


def pretext_labels(meta) -> tuple[int, int]:
  """(content class, camera motion) indices of a metadata line (its 'content' and 'seed')."""
  content = meta["content"]
  return (CONTENT_CLASSES.index(content),
          CAMERA_MOTIONS.index(camera_motion(content, meta["seed"])))

"""The content kinds of the synthetic videos: name -> renderer (rng, h, w, num_frames) -> frames."""

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

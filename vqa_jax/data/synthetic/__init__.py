"""Procedural VQA dataset of real encoded videos: the default, download-free training data.

Every video is procedural content with 0-2 controlled distortions whose strengths set its MOS, so
quality is visible in small native-resolution patches ("fragments") and the training job runs
anywhere without a download. Modules, in data-flow order:
  textures, sprites, camera, content   procedural content (domain A: sprites; B: camera paths)
  distortions                          the eight distortions and their order
  metadata                             per-video draws: domain, content, distortions, MOS
  video                                render one video, write it as Motion-JPEG .avi
  cache                                atomic, manifest-checked cache folders keyed by spec digest
  dataset                              the video dataset of a spec (generate, ensure_in_cache)
  images                               the IQA counterpart: first frames as PNG
  __main__                             the command line (`python -m vqa_jax.data.synthetic`)
"""

"""The clip samplers: what a video becomes before the model sees it (`config.sampling`).

  clip_sampler   `sample_clips`: decodes a video and runs the sampler `sampling.method` names
  fragments      FAST-VQA's fragments and FasterVQA's segments ('fragments', 'fragments_t')
  sama           SAMA's scaling-and-masking fragments ('sama')
  sama_iqa       SAMA's two-scale sampler for one image ('sama_iqa')
  frames_1fps    SimpleVQA's whole frames at one per second ('frames_1fps')
  grid           the grid geometry the fragment samplers share
"""

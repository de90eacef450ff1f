"""Video input: label files, decoding, fragment sampling, the synthetic dataset and tf.data pipelines."""

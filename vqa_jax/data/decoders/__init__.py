"""Video decoders beside OpenCV: NVDEC (PyNvVideoCodec) frames on the device, cut there."""

"""Weights in and out: PyTorch state dicts -> Flax params per format (convert_weights, convert_swin2d, convert_resnet, swin_layout, state_dicts) and the one checkpoint reader (pretrained)."""

"""Training losses beyond rate-distortion: pixel, perceptual, style, Wasserstein, adversarial.

One module per concept; every loss takes images as float N x 3 x H x W in
[0, 1] and returns a scalar (or per-image values where stated).
"""

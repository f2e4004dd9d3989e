"""Image-quality proxies: differentiable networks trained to mimic a metric (ProxIQA)."""

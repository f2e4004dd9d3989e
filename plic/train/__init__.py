"""Library side of training: data, losses, the rate-distortion trainer.

Per-paper recipes (PO-ELIC, ST-LIC, ProxIQA) live in ``projects/``.
"""

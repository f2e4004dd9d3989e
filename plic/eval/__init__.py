"""Evaluation: rate-distortion summaries and Bjontegaard deltas."""

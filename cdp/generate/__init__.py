"""Realistic omnichannel demo data with ground truth: `generate(settings, people, seed, noise)`."""

from cdp.generate.run import generate

__all__ = ["generate"]

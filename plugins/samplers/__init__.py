"""Sampler plugins: K candidate actions per issue for the best-of-K bench."""

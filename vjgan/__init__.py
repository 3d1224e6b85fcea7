"""vjgan: a real-time GAN visual instrument for live concerts."""

__version__ = "0.1.0"

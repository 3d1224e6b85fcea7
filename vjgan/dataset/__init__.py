"""Training data: image folders and zips (ImageFolder) and vjgan's procedural images."""

from .folder import IMAGE_EXTENSIONS, ImageFolder, decode_image
from .procedural import KINDS, PROCEDURAL_VERSION

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "decode_image", "KINDS", "PROCEDURAL_VERSION"]

"""Curation and audit of folder-per-class image classification datasets.

Importing this package is cheap on purpose: heavy libraries (torch, timm, fiftyone) are imported
inside the functions that need them.
"""

__version__ = "0.1.0"

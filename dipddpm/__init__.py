"""dipddpm: Deep Image Prior + DDPM hybrids (the science half of the project).

Imports torch, diffusers, scikit-image and numpy; never ray or wandb.
"""

__version__ = "0.1.0"

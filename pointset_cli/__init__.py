"""pointset: machine learning on point clouds treated as sets."""

__version__ = "0.1.0"

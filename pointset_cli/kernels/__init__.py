"""Optional compiled CPU kernels (numba); every caller keeps a pure-JAX path for GPU or without numba."""

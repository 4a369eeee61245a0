"""Point and mesh files (PLY, PCD, OBJ, OFF, STL, glTF, XYZ, NPY/NPZ) and MNIST.

`read_shape` is the one entry point for shapes; `pointset_cli.io.mnist` reads MNIST digits.
"""

from pointset_cli.io.files import MESH_SUFFIXES, POINT_SUFFIXES, is_supported, read_shape, write_points
from pointset_cli.io.shape import Shape

__all__ = ["MESH_SUFFIXES", "POINT_SUFFIXES", "Shape", "is_supported", "read_shape", "write_points"]

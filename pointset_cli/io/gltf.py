"""glTF 2.0 (.gltf, .glb) through trimesh; all meshes of the scene are concatenated."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.shape import Shape, make_shape


def read_gltf(data: bytes, file_type: str, folder: Path) -> Shape:
    """Parse glTF bytes (`file_type` "glb" or "gltf"); external buffers are looked up in `folder`."""
    import trimesh

    resolver = trimesh.resolvers.FilePathResolver(str(folder / "_"))
    scene = trimesh.load_scene(io.BytesIO(data), file_type=file_type, resolver=resolver)
    meshes = [g for g in scene.dump() if isinstance(g, trimesh.Trimesh) and len(g.vertices)]
    if meshes:
        mesh = trimesh.util.concatenate(meshes)
        return make_shape(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    clouds = [np.asarray(g.vertices) for g in scene.dump() if isinstance(g, trimesh.PointCloud)]
    if not clouds:
        raise InputError(f"{file_type} file holds no meshes or points")
    return make_shape(np.concatenate(clouds))

"""Host kernels as XLA FFI handlers: compiled programs call numba code without a Python callback.

A program that calls back into Python (`jax.pure_callback`) is never written to JAX's persistent
compilation cache, so every run recompiled its training step. An FFI custom call names a target
instead, so the program is cached, and a later process that registers the same name (the callers
do so on first use, while the program is traced) runs it from the cache.

A handler is a numba `cfunc` of one int64 (the address of XLA's call frame) returning 0 (no error).
The call frame's layout is xla/ffi/api/c_api.h's, FFI API 0.x, as jax ships it (`jax.ffi.include_dir()`):
the helpers here read it. A handler answers XLA's metadata query (`answers_metadata`), does nothing
at the stages before EXECUTE (`executes`), and at EXECUTE reads its buffers (`buffer`, `rows_shape`)
and runs an njit kernel. Buffers are row-major; vmapped calls add leading axes, which kernels flatten.
numba's disk cache keys a handler by its own file: after editing the helpers here (inlined into the
handlers), remove the handlers' cached builds (__pycache__/*.nbi, *.nbc).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np

try:
    import numba
    from numba import types
    from numba.extending import intrinsic
except ImportError:  # callers check available() and take their pure-JAX path
    numba = None

# c_api.h: XLA_FFI_Extension_Metadata, XLA_FFI_ExecutionStage_EXECUTE, and the API version of the
# layout read here (XLA_FFI_API_MAJOR/MINOR).
_METADATA_EXTENSION = 1
_EXECUTE = 3
_API_MAJOR, _API_MINOR = 0, 3
_LOW32 = 0xFFFFFFFF  # an enum is 4 bytes and padding: the rest of its 8-byte word is not its own
FRAME_WORDS = 16  # the call frame's words read here: up to the results' table


def available() -> bool:
    return numba is not None


if numba is not None:

    @intrinsic
    def _pointer(typingctx, address):
        """An integer address (int64) as a void*, for numba.carray."""
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(types.voidptr))
        return types.voidptr(types.int64), codegen

    @numba.njit(inline="always")
    def words(address, count):
        """The count int64 words at an address."""
        return numba.carray(_pointer(address), (count,), np.int64)

    @numba.njit(inline="always")
    def array(address, shape, dtype):
        """The array of `shape` and `dtype` whose data starts at an address (no copy)."""
        return numba.carray(_pointer(address), shape, dtype)

    @numba.njit(inline="always")
    def answers_metadata(frame):
        """True when this call is XLA's metadata query (now answered): the handler does nothing else.
        XLA_FFI_Metadata_Extension {struct_size, type, next, metadata*}; XLA_FFI_Metadata
        {struct_size, api_version {struct_size, extension*, int major, int minor}, uint32 traits}."""
        if frame[1] == 0:
            return False
        extension = words(frame[1], 4)
        if (extension[1] & _LOW32) != _METADATA_EXTENSION:
            return False
        metadata = array(extension[3], (9,), np.int32)
        metadata[6] = _API_MAJOR
        metadata[7] = _API_MINOR
        metadata[8] = 0  # no traits
        return True

    @numba.njit(inline="always")
    def executes(frame):
        """Whether the call is the EXECUTE stage (XLA also calls at INSTANTIATE, PREPARE, INITIALIZE)."""
        return (frame[4] & _LOW32) == _EXECUTE

    @numba.njit(inline="always")
    def buffer(frame, i, result):
        """(data address, rank, dims address) of argument i, or of result i.
        XLA_FFI_CallFrame {struct_size, extension*, api*, ctx*, stage, args {struct_size,
        extension*, size, types*, args*}, rets {the same, rets*}, ...}; XLA_FFI_Buffer
        {struct_size, extension*, dtype, data*, rank, dims*}."""
        table = frame[14] if result else frame[9]
        fields = words(words(table, i + 1)[i], 6)
        return fields[3], fields[4], fields[5]

    @numba.njit(inline="always")
    def rows_shape(frame, i, result):
        """(data address, rows, dims[-2], dims[-1]) of a buffer of rank >= 2, rows the product of the
        axes before the last two."""
        data, rank, dims_address = buffer(frame, i, result)
        dims = words(dims_address, rank)
        rows = 1
        for axis in range(rank - 2):
            rows *= dims[axis]
        return data, rows, dims[rank - 2], dims[rank - 1]


_KEEP: list = []  # the compiled handlers: XLA holds their bare addresses, so they must outlive every program


def register(name: str, handler: Callable) -> str:
    """Compile `handler` (a plain function of the frame's address, returning 0) as a cfunc (numba's
    disk cache keeps it) and register it as XLA:CPU FFI target `name`; returns the name."""
    import jax
    from numba.np.ufunc import parallel

    # A cfunc loaded from numba's cache does not start the thread pool its parallel loops run on
    # (compiling one does): called from XLA without it, the first parallel loop crashed the process.
    parallel._launch_threads()
    compiled = numba.cfunc(types.int64(types.int64), cache=True)(handler)
    capsule = ctypes.pythonapi.PyCapsule_New
    capsule.restype = ctypes.py_object
    capsule.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
    _KEEP.append(compiled)
    jax.ffi.register_ffi_target(name, capsule(compiled.address, None, None), platform="cpu")
    return name


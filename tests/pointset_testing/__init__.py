"""Helpers shared by the test folders (tests/ is on sys.path through pytest's `pythonpath` option).

tinydata: the first bundled MNIST digits as a tiny HDF5 data set and a tiny model config;
setdata: real MNIST and ModelNet sets as padded arrays; runner: `pointset` in a child process.
"""

"""Evaluation benchmarks: declarative descriptions (TOML) and one generic reader.

>>> from sharpdepth.benchmarks import load_benchmark, list_benchmarks
>>> bench = load_benchmark("motorcycle")  # offline: ships with scikit-image
>>> sample = bench[0]  # EvalSample: rgb, depth (m), valid, K, edges, meta

See :mod:`sharpdepth.benchmarks.readers` for the conventions and the description format.
"""

from sharpdepth.benchmarks.readers import (
    DATA_ROOT_ENV,
    DECODERS,
    Benchmark,
    BenchmarkDescription,
    EvalSample,
    crop_box,
    decode_gt,
    disparity_to_depth,
    get_description,
    list_benchmarks,
    load_benchmark,
    load_description,
    parse_middlebury_calib,
    read_dpt,
    read_pfm,
    read_rgb,
    read_sintel_cam,
    resolve_root,
    write_dpt,
    write_pfm,
)

__all__ = [
    "DATA_ROOT_ENV",
    "DECODERS",
    "Benchmark",
    "BenchmarkDescription",
    "EvalSample",
    "crop_box",
    "decode_gt",
    "disparity_to_depth",
    "get_description",
    "list_benchmarks",
    "load_benchmark",
    "load_description",
    "parse_middlebury_calib",
    "read_dpt",
    "read_pfm",
    "read_rgb",
    "read_sintel_cam",
    "resolve_root",
    "write_dpt",
    "write_pfm",
]

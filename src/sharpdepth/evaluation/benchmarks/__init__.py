"""Evaluation benchmarks: declarative descriptions (TOML) and one generic reader.

>>> from sharpdepth.evaluation.benchmarks import load_benchmark, list_benchmarks
>>> benchmark = load_benchmark("motorcycle")  # offline: ships with scikit-image
>>> sample = benchmark[0]  # EvalSample: rgb, depth (m), valid, K, edges, meta

:mod:`~sharpdepth.evaluation.benchmarks.description` holds the description format,
:mod:`~sharpdepth.evaluation.benchmarks.listing` where the data are looked for,
:mod:`~sharpdepth.evaluation.benchmarks.formats` the file formats and
:mod:`~sharpdepth.evaluation.benchmarks.samples` the conventions of a sample.
"""

from sharpdepth.evaluation.benchmarks.description import (
    DECODERS,
    BenchmarkDescription,
    get_description,
    list_benchmarks,
    load_description,
)
from sharpdepth.evaluation.benchmarks.formats import (
    decode_gt,
    parse_middlebury_calib,
    read_dpt,
    read_pfm,
    read_rgb,
    read_sintel_cam,
    write_dpt,
    write_pfm,
)
from sharpdepth.evaluation.benchmarks.listing import DATA_ROOT_ENV, resolve_root
from sharpdepth.evaluation.benchmarks.samples import (
    Benchmark,
    EvalSample,
    crop_box,
    disparity_to_depth,
    load_benchmark,
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

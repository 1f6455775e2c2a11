"""Data sources -> `WatchData` (watch matrix, ids, titles, genres)."""

from training.data.errors import DataError, DataWarning
from training.data.genre_mapping import GENRES
from training.data.load_options import LoadOptions
from training.data.loader import NAMED_SOURCES, load_source, parse_synthetic
from training.data.summary import format_summary, summarize
from training.data.synthetic import SyntheticSpec, generate
from training.data.watch import SyntheticTruth, WatchData

__all__ = [
    "GENRES",
    "NAMED_SOURCES",
    "DataError",
    "DataWarning",
    "LoadOptions",
    "SyntheticSpec",
    "SyntheticTruth",
    "WatchData",
    "format_summary",
    "generate",
    "load_source",
    "parse_synthetic",
    "summarize",
]

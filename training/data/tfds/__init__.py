"""MovieLens prepared by tensorflow-datasets -> `WatchData`, fast and cached."""

from training.data.tfds.reader import READERS, SUPPORTED, choose_reader, read_tfds

__all__ = ["READERS", "SUPPORTED", "choose_reader", "read_tfds"]

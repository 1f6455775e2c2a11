"""The raw records of a prepared tfds split, read chunk by chunk without decoding them.

`array_record` shards are read with array_record's own reader, sequentially with read-ahead
(tfds's random-access data source reads each record separately, about twice the CPU time).
`tfrecord` shards need TensorFlow's reader.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from training.data.errors import DataError

__all__ = ["CHUNK_RECORDS", "Shard", "array_record_chunks", "split_shards", "tfrecord_chunks"]

CHUNK_RECORDS = 65_536  # records per chunk: ~20 MiB of serialized MovieLens examples
_READ_AHEAD = "readahead_buffer_size:16777216"  # sequential reads in 16 MiB blocks


class Shard(NamedTuple):
    """Records `skip` .. `skip + take` of one file of a split."""

    path: Path
    skip: int
    take: int


def split_shards(builder: Any, split: str = "train") -> list[Shard]:
    """The files and record ranges of `split`, from tfds's `DatasetInfo`."""
    shards = []
    for instruction in builder.info.splits[split].file_instructions:
        take = instruction.take
        if take < 0:  # tfds marks "to the end of the file" with -1
            take = instruction.examples_in_shard - instruction.skip
        shards.append(Shard(Path(instruction.filename), instruction.skip, take))
    return shards


def _prepare_again(shard: Shard, problem: str) -> DataError:
    return DataError(
        f"{problem}; the preparation is incomplete or damaged: prepare it again", path=shard.path
    )


def array_record_chunks(
    shards: Sequence[Shard], *, chunk: int = CHUNK_RECORDS
) -> Iterator[list[bytes]]:
    """Serialized records of `array_record` shards, at most `chunk` at a time, in file order.

    Raises:
        DataError: a shard is missing, unreadable, or holds fewer records than tfds recorded.
    """
    from array_record.python.array_record_module import ArrayRecordReader

    for shard in shards:
        if not shard.path.is_file():
            raise _prepare_again(shard, "a file of the prepared dataset is missing")
        reader = ArrayRecordReader(str(shard.path), _READ_AHEAD)
        try:
            # The reader does not raise on a damaged file: it reports 0 records and not ok().
            have = reader.num_records()
            if not reader.ok() or have < shard.skip + shard.take:
                raise _prepare_again(
                    shard,
                    f"not a readable array_record file with {shard.skip + shard.take} records "
                    f"(it has {have})",
                )
            end = shard.skip + shard.take
            for start in range(shard.skip, end, chunk):
                yield reader.read(start, min(start + chunk, end))
        finally:
            with contextlib.suppress(RuntimeError):  # close() raises on a damaged file
                reader.close()


def tfrecord_chunks(
    shards: Sequence[Shard], *, chunk: int = CHUNK_RECORDS
) -> Iterator[list[bytes]]:
    """Serialized records of `tfrecord` shards, read with TensorFlow's `TFRecordDataset`.

    Raises:
        DataError: a shard is missing or damaged.
    """
    tf = importlib.import_module("tensorflow")
    for shard in shards:
        if not shard.path.is_file():
            raise _prepare_again(shard, "a file of the prepared dataset is missing")
        records = tf.data.TFRecordDataset(str(shard.path)).skip(shard.skip).take(shard.take)
        count = 0
        try:
            for batch in records.batch(chunk).as_numpy_iterator():
                count += len(batch)
                yield batch.tolist()
        except tf.errors.OpError as e:
            raise _prepare_again(shard, f"TensorFlow cannot read it ({e.message})") from None
        if count < shard.take:
            raise _prepare_again(
                shard,
                f"it holds {shard.skip + count} records, tfds recorded {shard.skip + shard.take}",
            )

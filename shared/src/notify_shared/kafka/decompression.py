"""A cap on how far a compressed Kafka batch is decompressed, so a small record cannot expand to gigabytes.

aiokafka decompresses a whole record batch into memory when the consumer first reads from it, with no limit:
a producer (any holder of a write credential for an input topic) can send a few kilobytes of gzip that expand to
gigabytes and bring the service down, again after every restart, since the offset is never committed. aiokafka
offers no setting for it, so `install_decompression_limit` puts a bound into it at two places:

- the decoders aiokafka's record batches call (`gzip_decode`, …) are replaced by ones that stop after
  `limit` bytes. gzip, the codec aiokafka can always read, stops *while* decompressing, so memory stays bounded;
  snappy, lz4 and zstd (readable only when the optional `cramjam` is installed) are checked after decompressing.
- the fetcher's record batches are wrapped, so that a batch refused that way yields one stand-in record in place
  of its records: no key, an empty value and the header `x-notify-record-too-large`. Its offset is the batch's
  last, so committing it moves the consumer past the whole batch. `check_record_size` (called by the decoder)
  turns it into a `record_too_large` dead letter; the service carries on with the next record.

Both are process-wide, as aiokafka's decoders are: one service runs per process, with one `KAFKA_MAX_RECORD_BYTES`.
The aiokafka names replaced here are checked when installing, so an aiokafka that renamed them fails at start-up
rather than running without the cap.
"""

from __future__ import annotations

import gzip
import importlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from notify_shared.contract import EventRejected

TOO_LARGE_HEADER: Final = "x-notify-record-too-large"
"""On a stand-in record: `<limit>;<first offset>;<last offset>` of the batch that decompressed past the limit."""

_BATCH_MODULES: Final = (
    "aiokafka.record._crecords.default_records",
    "aiokafka.record._crecords.legacy_records",
    "aiokafka.record.default_records",
    "aiokafka.record.legacy_records",
)
_FETCHER_MODULE: Final = "aiokafka.consumer.fetcher"

Decode = Callable[[Any], bytes]


class DecompressedTooLargeError(Exception):
    """A compressed batch expanded past the limit; raised inside aiokafka and caught by the batch wrapper."""


def bounded_gzip_decode(limit: int) -> Decode:
    """A gzip decoder that reads at most `limit` bytes of output, and refuses input that has more."""

    def decode(payload: Any) -> bytes:
        with gzip.GzipFile(fileobj=io.BytesIO(payload), mode="rb") as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise DecompressedTooLargeError(limit)
        return data

    return decode


def size_checked(decode: Decode, limit: int) -> Decode:
    """`decode`, then the same refusal past `limit`: for the codecs that cannot stop part-way."""

    def checked(payload: Any) -> bytes:
        data = decode(payload)
        if len(data) > limit:
            raise DecompressedTooLargeError(limit)
        return data

    return checked


@dataclass(frozen=True)
class StandInRecord:
    """What the fetcher reads from a refused batch in place of its records (the fields aiokafka's record has)."""

    offset: int
    timestamp: int
    timestamp_type: int
    headers: list[tuple[str, bytes]]
    key: bytes | None = None
    value: bytes = b""
    checksum: int | None = None


@dataclass
class _GuardedBatch:
    """A record batch whose records, if they decompress past the limit, are replaced by one `StandInRecord`.

    aiokafka's batches decompress when iteration starts (`__iter__`), so that is where the refusal is caught.
    """

    batch: Any
    limit: int
    _records: Iterator[Any] | None = field(default=None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.batch, name)

    def __iter__(self) -> Iterator[Any]:
        try:
            self._records = iter(self.batch)
        except DecompressedTooLargeError:
            first, last = self.batch.base_offset, self.batch.next_offset - 1
            stand_in = StandInRecord(
                offset=last,
                timestamp=self.batch.max_timestamp,
                timestamp_type=self.batch.timestamp_type,
                headers=[(TOO_LARGE_HEADER, f"{self.limit};{first};{last}".encode("ascii"))],
            )
            self._records = iter([stand_in])
        return self

    def __next__(self) -> Any:
        if self._records is None:
            # The fetcher reads a control batch's one record with next() alone; those are never compressed.
            iter(self)
        assert self._records is not None
        return next(self._records)


class _GuardedMemoryRecords:
    """aiokafka's `MemoryRecords` (the records of one fetched partition), handing out guarded batches."""

    def __init__(self, records: Any, limit: int) -> None:
        self._records = records
        self._limit = limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        return None if batch is None else _GuardedBatch(batch, self._limit)


def install_decompression_limit(limit: int) -> None:
    """Cap decompression in every aiokafka consumer of this process at `limit` bytes per batch (see the module)."""
    fetcher = importlib.import_module(_FETCHER_MODULE)
    memory_records = importlib.import_module("aiokafka.record.memory_records").MemoryRecords
    codec = importlib.import_module("aiokafka.codec")
    decoders: dict[str, Decode] = {
        "gzip_decode": bounded_gzip_decode(limit),
        "snappy_decode": size_checked(codec.snappy_decode, limit),
        "lz4_decode": size_checked(codec.lz4_decode, limit),
        "zstd_decode": size_checked(codec.zstd_decode, limit),
    }
    for module_name in _BATCH_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # the C extension is missing on this platform: aiokafka uses the Python one
        for name, decoder in decoders.items():
            if name in vars(module):
                setattr(module, name, decoder)
        if "gzip_decode" not in vars(module):
            raise RuntimeError(
                f"{module_name} no longer decodes gzip by that name: the decompression cap needs updating"
            )

    def guarded(data: Any) -> _GuardedMemoryRecords:
        return _GuardedMemoryRecords(memory_records(data), limit)

    if not hasattr(fetcher, "MemoryRecords"):
        raise RuntimeError("aiokafka's fetcher no longer reads MemoryRecords: the decompression cap needs updating")
    # The fetcher builds one MemoryRecords per fetched partition by this module-level name.
    setattr(fetcher, "MemoryRecords", guarded)  # noqa: B010 - mypy does not know the attribute


def check_record_size(headers: Any) -> None:
    """Refuse, as `record_too_large`, the stand-in for a batch that decompressed past the cap.

    An uncompressed record needs no check here: it is as large as Kafka stored it, within the broker's
    `message.max.bytes`.
    """
    for key, header_value in headers or ():
        if key == TOO_LARGE_HEADER:
            # Written by _GuardedBatch; a producer could send the header too, and then gets its record refused.
            cap, _, offsets = (header_value or b"").decode("ascii", "replace").partition(";")
            first, _, last = offsets.partition(";")
            raise EventRejected(
                "record_too_large",
                [
                    f"the compressed batch at offsets {first[:20]}-{last[:20]} expands past {cap[:20]} bytes "
                    "(KAFKA_MAX_RECORD_BYTES); its records were not read"
                ],
            )

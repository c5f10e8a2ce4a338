"""Wire bytes of stored flows, kept zstd-compressed in blocks of BLOCK_FLOWS flows.

A stored flow's GetFlowsResponse bytes (~1.1-1.4 KB) cost more than everything else about it.
Compressed alone they shrink little; 256 consecutive flows compressed together (zstd level
1) take ~50-80 bytes each, for ~1 us of compression per flow (in C, without the GIL) and
~0.1 ms to decompress the whole block back (benchmarks/RESULTS.md). So the store appends each flow's bytes to an
open Block (a list of bytes), and seals a full one: one compressed frame with a checksum,
the flows' offsets in an array, the list freed. A record keeps (block, index) instead of its
bytes; `FlowRecord.raw` asks the block, which decompresses through a small shared cache
of recent blocks (the UI thread, export and the aggregation tap all read).

Sealing happens on a thread of its own (`seal_later`): zstd compresses without holding the
GIL, so with a second core the producer's thread (the stream reader) does not pay the ~1 us
per flow. When that thread falls SEAL_BACKLOG blocks behind, the producer seals itself.

A sealed block that cannot be decompressed (damaged: checksum, frame or size mismatch) is
reported by a FlowBytesLost from `get`, for every flow it held; it never takes the caller
down with another error.
"""

from __future__ import annotations

import threading
from array import array
from itertools import accumulate
from queue import SimpleQueue

import zstandard

BLOCK_FLOWS = 256  # flows per block (128: 10-18% more bytes a flow; 512: 4-11% fewer, 2x per decompression)
COMPRESSION_LEVEL = 1  # level 3 saved 2% more; levels -1 to -5 cost 7-90% more bytes, no time
CACHED_BLOCKS = 16  # decompressed blocks kept for the next reads (~0.3 MB each at 256 flows)
SEAL_BACKLOG = 8  # full blocks waiting for the sealing thread before producers seal their own


class FlowBytesLost(Exception):
    """The wire bytes of a stored flow cannot be read back: its compressed block is damaged.
    The record still has its time, verdict and node; nothing else of it can be recovered."""


_local = threading.local()  # zstd contexts are not safe to share between threads


def _compressor() -> zstandard.ZstdCompressor:
    try:
        return _local.compressor
    except AttributeError:
        _local.compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL, write_checksum=True)
        return _local.compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    try:
        return _local.decompressor
    except AttributeError:
        _local.decompressor = zstandard.ZstdDecompressor()
        return _local.decompressor


class Block:
    """The wire bytes of up to BLOCK_FLOWS flows: a list while open, one zstd frame once sealed.

    Only the store that opened it appends (`add`, under the store's lock), then one thread
    seals it; `get` is safe from any thread, before, during and after sealing."""

    __slots__ = ("_parts", "_data", "_offsets", "_error")

    def __init__(self) -> None:
        self._parts: list[bytes] | None = []
        self._data = b""
        self._offsets = array("I")
        self._error = ""  # why a sealed block cannot be read, once found out

    def __len__(self) -> int:
        parts = self._parts
        return len(parts) if parts is not None else len(self._offsets) - 1

    @property
    def sealed(self) -> bool:
        return self._parts is None

    @property
    def compressed_size(self) -> int:
        return len(self._data)

    def add(self, raw: bytes) -> int:
        """Append one flow's bytes to this open block; returns its index."""
        parts = self._parts
        assert parts is not None, "a sealed block takes no more flows"
        parts.append(raw)
        return len(parts) - 1

    def seal(self) -> None:
        """Compress the flows added so far into one frame and let go of their bytes."""
        parts = self._parts
        if parts is None:
            return
        offsets = array("I", accumulate(map(len, parts), initial=0))
        # One call, which compresses without holding the GIL (streaming the parts one call
        # each was 30% slower and let go of the GIL 256 times). zstandard's result keeps the
        # allocation of the worst case, its unused part only hidden: the copy is what stays.
        frame = _compressor().compress(b"".join(parts))
        # Readers check _parts first: the frame and offsets are in place before it goes.
        self._data = bytes(memoryview(frame))
        self._offsets = offsets
        self._parts = None

    def get(self, index: int) -> bytes:
        """The bytes of flow `index`; FlowBytesLost when the sealed block cannot be read."""
        parts = self._parts
        if parts is not None:
            return parts[index]
        plain = _cache.get(self)
        if plain is None:
            plain = _remember(self, self.plain())
        offsets = self._offsets
        return plain[offsets[index] : offsets[index + 1]]

    def plain(self) -> bytes:
        """Every flow's bytes, concatenated (decompressed now: see `get` for the cached way)."""
        parts = self._parts
        if parts is not None:
            return b"".join(parts)
        if self._error:
            raise FlowBytesLost(self._error)
        data, offsets = self._data, self._offsets
        expected = offsets[-1]
        try:
            declared = zstandard.frame_content_size(data)
            if declared != expected:  # also keeps a damaged header from allocating gigabytes
                raise zstandard.ZstdError(f"the frame declares {declared} bytes, not {expected}")
            plain = _decompressor().decompress(data)
            if len(plain) != expected:
                raise zstandard.ZstdError(f"{len(plain)} bytes came out, not {expected}")
        except Exception as error:  # noqa: BLE001 - whatever the damage, report it, never crash
            reason = str(error).removeprefix("decompression error: ") or type(error).__name__
            self._error = f"flow bytes lost: a compressed block of {len(offsets) - 1} flows cannot be read ({reason})"
            raise FlowBytesLost(self._error) from None
        return plain

    def frame(self) -> tuple[bytes, bytes]:
        """A sealed block as (compressed frame, offsets as bytes): what `unpack` takes back."""
        assert self._parts is None, "only a sealed block has a frame"
        return self._data, self._offsets.tobytes()


# --- sealing off the producer's thread ------------------------------------------------------

_waiting: SimpleQueue[Block | threading.Event] = SimpleQueue()
_sealer: threading.Thread | None = None
_sealer_lock = threading.Lock()


def seal_later(block: Block) -> None:
    """Have a full block sealed by the sealing thread, or now when that thread is behind."""
    global _sealer
    if _waiting.qsize() >= SEAL_BACKLOG:
        block.seal()
        return
    if _sealer is None:
        with _sealer_lock:
            if _sealer is None:
                thread = threading.Thread(target=_seal_forever, name="kcockpit-block-sealer", daemon=True)
                thread.start()
                _sealer = thread
    _waiting.put(block)


def _seal_forever() -> None:
    get = _waiting.get
    while True:
        item = get()
        if item.__class__ is Block:
            try:
                item.seal()
            except Exception:  # noqa: BLE001 - e.g. MemoryError: the block stays open, readable
                pass
        else:
            item.set()  # seal_pending's marker: everything before it is sealed


def seal_pending() -> None:
    """Return once every block handed to seal_later so far is sealed (tests, benchmarks)."""
    if _sealer is not None:
        done = threading.Event()
        _waiting.put(done)
        done.wait()


def unpack(frame: bytes, offsets: bytes) -> list[memoryview]:
    """The flows' bytes of a sealed block's `frame()`, e.g. in another process; FlowBytesLost
    when the frame is damaged."""
    block = Block()
    block._parts = None
    block._data = frame
    block._offsets.frombytes(offsets)
    view = memoryview(block.plain())
    bounds = block._offsets
    return [view[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


# Decompressed blocks recently read, oldest first: reading a flow list's rows, exporting or
# shipping goes through a block's flows in order, so one decompression serves all of them.
_cache: dict[Block, bytes] = {}
_cache_lock = threading.Lock()


def _remember(block: Block, plain: bytes) -> bytes:
    with _cache_lock:
        _cache[block] = plain
        while len(_cache) > CACHED_BLOCKS:
            del _cache[next(iter(_cache))]
    return plain


def forget_cached() -> None:
    """Drop every decompressed block kept for reads (tests, benchmarks)."""
    with _cache_lock:
        _cache.clear()

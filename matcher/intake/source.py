"""What the readers read: a path, or a binary stream (an upload, an open file, ``io.BytesIO``).

A stream is anything with ``read()`` returning bytes. It is read from where it stands and not
closed (the caller opened it); its name in messages is the ``name`` given to the reader, else
its own ``name`` attribute (an open file's path), else ``<upload>``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, TypeGuard

from matcher.errors import InvalidInstance, InvalidParameter, Problem

#: A path to read, or a binary stream.
Source = str | os.PathLike[str] | IO[bytes]

#: The name of a stream with none of its own.
UPLOAD = "<upload>"


def is_stream(source: object) -> TypeGuard[IO[bytes]]:
    """Whether ``source`` is a stream rather than a path."""
    return hasattr(source, "read") and not isinstance(source, str | os.PathLike)


def as_path(source: Source) -> Path | None:
    """``source`` as a path, or None for a stream."""
    return Path(source) if isinstance(source, str | os.PathLike) else None


def name_of(source: Source, name: str | None = None) -> str:
    """How messages name ``source``: ``name`` if given, else the path or the stream's name."""
    if name:
        return name
    if isinstance(source, str | os.PathLike):
        return str(Path(source))
    own = getattr(source, "name", None)
    return own if isinstance(own, str) and own else UPLOAD


def read_bytes(source: Source, limit: int, name: str) -> bytes:
    """At most ``limit + 1`` bytes of ``source`` (the caller refuses more than ``limit``).
    A path that cannot be read, or a stream that fails, is an :class:`InvalidInstance` naming
    ``name``; a stream of text instead of bytes is the caller's mistake
    (:class:`InvalidParameter`)."""
    try:
        if isinstance(source, str | os.PathLike):
            # A pipe or device is read too (`<(...)`), but never more than the limit.
            with Path(source).open("rb") as fh:
                raw = fh.read(limit + 1)
        elif is_stream(source):
            raw = source.read(limit + 1)
        else:
            raise InvalidParameter(f"read a path or a binary stream, not {type(source).__name__}")
    except FileNotFoundError:
        raise InvalidInstance(name, [Problem("$", "file not found")]) from None
    except IsADirectoryError:
        raise InvalidInstance(name, [Problem("$", "a directory, not a file")]) from None
    except OSError as exc:
        raise InvalidInstance(
            name, [Problem("$", f"cannot read file ({exc.strerror or type(exc).__name__})")]
        ) from None
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise InvalidParameter(
            f"{name}: the stream gives {type(raw).__name__}, not bytes; open it in binary "
            "mode ('rb') or pass io.BytesIO"
        )
    return bytes(raw)


def seekable(source: IO[bytes], limit: int, name: str) -> IO[bytes]:
    """``source`` itself when it can seek (a workbook is a zip file: its reader seeks, and
    the readers peek at the first bytes), else its bytes in memory, at most ``limit``."""
    try:
        if source.seekable():
            return source
    except (AttributeError, OSError, ValueError):
        pass
    raw = read_bytes(source, limit, name)
    if len(raw) > limit:
        raise InvalidInstance(name, [Problem("$", f"larger than {limit // 2**20} MB")])
    buffer = io.BytesIO(raw)
    buffer.name = name  # the suffix still picks the reader
    return buffer


def starts_with(source: Source, magic: bytes) -> bool:
    """Whether ``source`` begins with ``magic``; a stream is put back where it was (a stream
    that cannot seek is not looked into: False)."""
    if not isinstance(source, str | os.PathLike):
        try:
            if not source.seekable():
                return False
            at = source.tell()
            head = source.read(len(magic))
            source.seek(at)
        except (AttributeError, OSError, ValueError):
            return False
        return head == magic
    try:
        with Path(source).open("rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False

"""The text header shared by AEDAT 2.0 and 3.1: ``#`` lines with CRLF ends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from ..errors import FormatError, PathError

_MAX_LINE = 1 << 16
_MAX_HEADER = 1 << 24


def check_input_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it is a readable file; PathError naming it otherwise."""
    path = Path(path)
    if not path.exists():
        raise PathError(f"{path}: no such file")
    if path.is_dir():
        raise PathError(f"{path}: is a folder, expected a recording file")
    if not os.access(path, os.R_OK):
        raise PathError(f"{path}: not readable (permission denied)")
    return path


def read_text_header(f: BinaryIO, path: Path, magic: bytes, end_line: bytes | None) -> int:
    """Consume the header of an open file and return the byte offset where the body starts.

    The first line must be ``magic``. With ``end_line`` the header runs up to and including that
    line (AEDAT 3.1); without, it runs while lines start with ``#`` (AEDAT 2.0, whose headers
    vary from 5 to 85 lines, so no fixed size is assumed).
    """
    first = f.readline(_MAX_LINE)
    version = first.rstrip(b"\r\n")
    if version != magic:
        expected = magic.decode()
        if version.startswith(b"#!AER-DAT"):
            found = version[len(b"#!AER-DAT") :].decode("ascii", "replace")
            raise FormatError(
                f"{path}: header says AEDAT {found}, expected {expected[len('#!AER-DAT') :]}"
            )
        shown = first[:40]
        raise FormatError(f"{path}: bad magic at byte offset 0: {shown!r}, expected {expected!r}")
    offset = len(first)
    while True:
        if end_line is None and f.peek(1)[:1] != b"#":
            return offset
        line = f.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            what = "line too long" if len(line) == _MAX_LINE else "file ends inside the header"
            raise FormatError(f"{path}: truncated header at byte offset {offset}: {what}")
        if end_line is not None and not line.startswith(b"#"):
            raise FormatError(
                f"{path}: garbage in the header at byte offset {offset}: {line[:40]!r} "
                f"does not start with '#' (the header ends with {end_line.decode()!r})"
            )
        offset += len(line)
        if end_line is not None and line.rstrip(b"\r\n") == end_line:
            return offset
        if offset > _MAX_HEADER:
            raise FormatError(f"{path}: header runs past {_MAX_HEADER} bytes without ending")

"""What a GGUF file's header says about the model, read without loading it (milliseconds, where
llama.cpp takes seconds, or minutes to fail on an impossible context window).

Only the metadata key-value section is read, up to the first `<architecture>.context_length`.
Layout (GGUF v2/v3, little-endian): magic "GGUF", version u32, tensor count u64, key-value count
u64, then each key (u64 length + UTF-8), a value type u32 and the value.
"""

import struct
from pathlib import Path
from typing import BinaryIO

# Value types: byte size of the fixed-size ones; 8 = string, 9 = array.
FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
INTEGER_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
STRING, ARRAY = 8, 9


def trained_context(path: Path) -> int | None:
    """The context length the model was trained with, or None if the header does not say."""
    try:
        with open(path, "rb") as file:
            if file.read(4) != b"GGUF" or _unpack(file, "<I") < 2:
                return None
            _unpack(file, "<Q")  # tensor count
            for _ in range(_unpack(file, "<Q")):
                key = _read_string(file)
                kind = _unpack(file, "<I")
                if key.endswith(".context_length") and kind in INTEGER_FORMATS:
                    return _unpack(file, INTEGER_FORMATS[kind])
                _skip_value(file, kind)
    except (OSError, struct.error, KeyError, UnicodeDecodeError, ValueError):
        return None  # llama.cpp will say what is wrong with the file
    return None


def _unpack(file: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = file.read(size)
    if len(data) != size:
        raise ValueError("truncated header")
    return struct.unpack(fmt, data)[0]


def _read_string(file: BinaryIO) -> str:
    return file.read(_unpack(file, "<Q")).decode("utf-8")


def _skip_value(file: BinaryIO, kind: int) -> None:
    if kind == STRING:
        file.seek(_unpack(file, "<Q"), 1)
    elif kind == ARRAY:
        item_kind, count = _unpack(file, "<I"), _unpack(file, "<Q")
        if item_kind in FIXED_SIZES:
            file.seek(FIXED_SIZES[item_kind] * count, 1)
        else:
            for _ in range(count):
                _skip_value(file, item_kind)
    else:
        file.seek(FIXED_SIZES[kind], 1)

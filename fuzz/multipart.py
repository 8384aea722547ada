"""Fuzz target: multipart/form-data decoding (mummy.multipart.decode_multipart).

Input: byte 0 chooses the Content-Type. Even: a fixed one, with boundary "B0undary"
quoted (0) or not (2), or the boundary "--" (4, 6). Odd: the Content-Type is the
input up to its first LF (so the header's parameters are fuzzed too). The rest is
the request body.

A failure is any exception but MultipartError, or an entry that is not what the
API promises (str name, str or None filename, data a view into the body).

Run through ci/fuzz.py, or:
    .venv-gil/bin/python fuzz/multipart.py fuzz/corpus/multipart
"""

import sys
from dataclasses import dataclass

import atheris

with atheris.instrument_imports():
    from mummy.headers import Headers
    from mummy.multipart import MultipartError, decode_multipart

CONTENT_TYPES = [
    'multipart/form-data; boundary="B0undary"',
    "multipart/form-data; boundary=B0undary",
    "multipart/form-data; charset=utf-8; boundary=--",
    "Multipart/Form-Data;boundary=--",
]


@dataclass
class FormRequest:
    headers: Headers
    body: bytes


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] % 2 == 0:
        content_type = CONTENT_TYPES[data[0] // 2 % len(CONTENT_TYPES)]
        body = data[1:]
    else:
        line, _, body = data[1:].partition(b"\n")
        content_type = line.decode("latin-1")
    try:
        entries = decode_multipart(FormRequest(Headers([("Content-Type", content_type)]), body))
    except MultipartError:
        return
    for entry in entries:
        assert isinstance(entry.name, str)
        assert entry.filename is None or isinstance(entry.filename, str)
        assert isinstance(entry.data, memoryview) and entry.data.obj is body
        assert bytes(entry.data) in body


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

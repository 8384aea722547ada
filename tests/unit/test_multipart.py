"""multipart/form-data decoding: Mummy's tests/test_multipart.nim and fuzz_multipart.nim,
RFC 7578 / RFC 2046 cases, and property-based tests against urllib3's encoder."""

import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from urllib3.fields import RequestField
from urllib3.filepost import encode_multipart_formdata

import mummy
from mummy.multipart import MultipartEntry, MultipartError, decode_multipart


@dataclass(frozen=True)
class Form:
    """What decode_multipart reads from a request: its headers and body."""

    headers: mummy.Headers
    body: bytes


def decode(body: bytes, content_type: str | None = "multipart/form-data; boundary=123"):
    headers = mummy.Headers({} if content_type is None else {"Content-Type": content_type})
    return decode_multipart(Form(headers, body))


# --- Mummy's tests/test_multipart.nim ----------------------------------------------------


def test_no_headers_and_no_body() -> None:
    with pytest.raises(mummy.MummyError):
        decode(b"", None)


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("multipart/form-data; boundary=123", True),
        ("asdf; boundary=123", False),
        ("multipart/form-data; boundary=", False),
        ("multipart/form-data; boundary=456", False),
        ("MULTIPART/FoRm-DaTa; boundary=123", True),
        ("multipart/form-data;boundary=123", True),
        ('multipart/form-data; boundary="123"', True),
    ],
)
def test_empty_body_content_types(content_type: str, ok: bool) -> None:
    if ok:
        assert decode(b"--123--", content_type) == []
    else:
        with pytest.raises(mummy.MummyError):
            decode(b"--123--", content_type)


def test_close_delimiter_followed_by_crlf() -> None:
    assert decode(b"--123--\r\n", 'multipart/form-data; boundary="123"') == []


@pytest.mark.parametrize(
    "disposition", ['form-data; name="abc"', "form-data; name=abc", "form-data; name=abc;zzz"]
)
def test_one_empty_part(disposition: str) -> None:
    body = f"--123\r\nContent-Disposition: {disposition}\r\n\r\n\r\n--123--".encode()
    (entry,) = decode(body)
    assert entry.name == "abc" and entry.filename is None
    # Mummy gives `none` for an empty part; we give an empty view.
    assert entry.data.nbytes == 0 and bytes(entry.data) == b""
    assert entry.headers == mummy.Headers([("Content-Disposition", disposition)])


@pytest.mark.parametrize(
    "body",
    [
        b"--123\r\nContent-Disposition: form-data; name=abc\r\n--123--",
        b'--123\r\nContent-Disposition: name="abc"\r\n\r\n\r\n--123--',
        b"--123\r\n\r\n--123--",
        b"--123\r\nContent-Disposition: form-data; name=abc\r\n\r\n--123--",
        b"--123\r\nContent-Disposition: form-data; \r\n\r\n--123--",
    ],
)
def test_malformed_parts(body: bytes) -> None:
    with pytest.raises(mummy.MummyError):
        decode(body)


def test_one_part_with_data() -> None:
    (entry,) = decode(b'--123\r\nContent-Disposition: form-data; name="abc"\r\n\r\ndef\r\n--123--')
    assert entry.name == "abc" and entry.filename is None and bytes(entry.data) == b"def"


TWO_PARTS = (
    b"--123\r\n"
    b'Content-Disposition: form-data; name="abc";filename="file.txt";\r\n'
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"def\r\n"
    b"--123\r\n"
    b'Content-Disposition: form-data; name="ghi"\r\n'
    b"Dummy-Header-1: 1\r\n"
    b"Dummy-Header-2: 2\r\n"
    b"Broken-Header\r\n"
    b"\r\n"
    b"jkl\r\n"
    b"--123--"
)


def test_two_parts() -> None:
    first, second = decode(TWO_PARTS)
    assert (first.name, first.filename, len(first.headers)) == ("abc", "file.txt", 2)
    assert first.headers["Content-Type"] == "text/plain" and bytes(first.data) == b"def"
    assert (second.name, second.filename, bytes(second.data)) == ("ghi", None, b"jkl")
    assert second.headers == mummy.Headers(
        [
            ("Content-Disposition", 'form-data; name="ghi"'),
            ("Dummy-Header-1", "1"),
            ("Dummy-Header-2", "2"),
            ("Broken-Header", ""),
        ]
    )


# --- Mummy's tests/fuzz_multipart.nim: every prefix and suffix ---------------------------


@pytest.mark.parametrize("i", range(len(TWO_PARTS)))
def test_every_prefix_and_suffix_decodes_or_raises_mummy_error(i: int) -> None:
    prefix, suffix = TWO_PARTS[: i + 1], TWO_PARTS[i:]
    try:
        entries = decode(prefix)
    except MultipartError:
        pass
    else:  # a cut body never passes for a complete one
        assert prefix == TWO_PARTS and [e.name for e in entries] == ["abc", "ghi"]
    try:
        entries = decode(suffix)
    except MultipartError:
        pass
    else:  # once the first delimiter is cut, what precedes the next one is a preamble
        names = [e.name for e in entries]
        assert names == ["abc", "ghi"] if i == 0 else names in (["ghi"], [])


# --- RFC 2046 §5.1.1 framing and RFC 7578 parameters ------------------------------------


def test_data_is_a_zero_copy_view_into_the_body() -> None:
    form = Form(mummy.Headers({"Content-Type": "multipart/form-data; boundary=123"}), TWO_PARTS)
    entries = decode_multipart(form)
    assert all(e.data.obj is form.body and e.data.readonly for e in entries)


def test_preamble_epilogue_and_transport_padding_are_ignored() -> None:
    body = (
        b"This is the preamble.\r\n--123 \t\r\n"
        b'Content-Disposition: form-data; name="a"\r\n\r\n'
        b"x\r\n--123\r\n"
        b'Content-Disposition: form-data; name="b"\r\n\r\n'
        b"y\r\n--123--  \r\nThis is the epilogue, with --123 in it.\r\n"
    )
    assert [(e.name, bytes(e.data)) for e in decode(body)] == [("a", b"x"), ("b", b"y")]


def test_content_is_binary_and_may_contain_crlf_and_dashes() -> None:
    data = b"\r\n--12\r\n\x00\xff--123x\r\n\r\n"
    body = b'--123\r\nContent-Disposition: form-data; name="f"\r\n\r\n' + data + b"\r\n--123--"
    # "--123x" is not preceded by CRLF, so it is content; "\r\n--12" is a shorter boundary.
    (entry,) = decode(body)
    assert bytes(entry.data) == data


def test_a_delimiter_line_with_junk_after_the_boundary_is_an_error() -> None:
    body = b'--123\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n--1234\r\n--123--'
    with pytest.raises(MultipartError, match="boundary line must end"):
        decode(body)


def test_a_truncated_body_is_an_error() -> None:
    with pytest.raises(MultipartError, match="ends before the closing boundary"):
        decode(b'--123\r\nContent-Disposition: form-data; name="f"\r\n\r\nhalf an upl')


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; charset=utf-8; boundary=abc", "abc"),
        ("multipart/form-data; boundary=abc; charset=utf-8", "abc"),
        ('Multipart/Form-Data ;  BOUNDARY = "a b;c"', "a b;c"),
        ("multipart/form-data; boundary=abc; boundary=zzz", "abc"),
    ],
)
def test_boundary_parameter(content_type: str, boundary: str) -> None:
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="n"\r\n\r\nv\r\n--{boundary}--'
    (entry,) = decode(body.encode(), content_type)
    assert bytes(entry.data) == b"v"


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/mixed; boundary=123",
        "multipart/form-data",
        'multipart/form-data; boundary="123',
        'multipart/form-data; boundary=""',
    ],
)
def test_bad_content_types(content_type: str) -> None:
    with pytest.raises(MultipartError, match="Content-Type"):
        decode(b"--123--", content_type)


def disposition(value: str) -> MultipartEntry:
    body = f"--123\r\nContent-Disposition: {value}\r\n\r\ndata\r\n--123--".encode()
    (entry,) = decode(body)
    return entry


@pytest.mark.parametrize(
    ("value", "name", "filename"),
    [
        ('form-data; name="a"; filename="b.txt"', "a", "b.txt"),
        ('FORM-DATA; NAME="a"; FileName="b.txt"', "a", "b.txt"),
        ('form-data; filename="b.txt"; name="a"', "a", "b.txt"),
        ('form-data;name="a";filename=""', "a", ""),
        ("form-data; name = a ; filename = b.txt ", "a", "b.txt"),
        ('form-data; name=""', "", None),
        ('form-data; name=" a;b=c "', " a;b=c ", None),
        ('form-data; name="a"; name="z"', "a", None),
        # HTML's form encoding: %22, %0D, %0A stand for ", CR, LF; nothing else is decoded.
        ('form-data; name="say %22hi%22%0D%0A"; filename="%41%2522"', 'say "hi"\r\n', "%41%2522"),
        # Backslashes are ordinary characters (browsers never escape them).
        ('form-data; name="a"; filename="C:\\dir\\b.txt"', "a", "C:\\dir\\b.txt"),
        ('form-data; name="a\\"; filename="b"', "a\\", "b"),
        # RFC 8187 filename* wins over filename.
        (
            "form-data; name=a; filename=\"x\"; filename*=UTF-8''na%C3%AFve%20%E2%82%AC.txt",
            "a",
            "naïve €.txt",
        ),
        ("form-data; name=a; filename*=iso-8859-1'en'%E9t%E9", "a", "été"),
        ("form-data; name=a; filename*0=x; title*=bogus", "a", None),
    ],
)
def test_content_disposition_parameters(value: str, name: str, filename: str | None) -> None:
    entry = disposition(value)
    assert (entry.name, entry.filename) == (name, filename)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('attachment; name="a"', "must be form-data"),
        ('form-data; filename="a"', "it has no name"),
        ('form-data; name="a', "cannot read its parameters"),
        ('form-data; name="a"b', "cannot read its parameters"),
        ('form-data; name=a"b', "cannot read its parameters"),
        ("form-data; name=a; filename*=UTF-8na%C3%AFve", "expected charset'language'value"),
        ("form-data; name=a; filename*=UTF-8''%zz", "expected charset'language'value"),
        ("form-data; name=a; filename*=koi8-r''%C1", "use UTF-8 or ISO-8859-1"),
        ("form-data; name=a; filename*=UTF-8''%FF", "not valid utf-8"),
    ],
)
def test_bad_content_dispositions(value: str, message: str) -> None:
    with pytest.raises(MultipartError, match=re.escape(message)):
        disposition(value)


def test_part_headers_utf8_latin1_and_folding() -> None:
    body = (
        b"--123\r\n"
        b'Content-Disposition: form-data; name="\xc3\xa9"\r\n'
        b"X-Folded: one\r\n  two\r\n\tthree\r\n\r\n\r\n"
        b"--123\r\n"
        b'Content-Disposition: form-data; name="\xe9"\r\n\r\n\r\n'
        b"--123--"
    )
    utf8, latin1 = decode(body)
    assert utf8.name == "é" and utf8.headers["x-folded"] == "one two three"
    assert latin1.name == "é"


def test_a_part_with_no_headers_has_no_name() -> None:
    with pytest.raises(MultipartError, match="no Content-Disposition"):
        decode(b"--123\r\n\r\ndata\r\n--123--")


def test_a_part_without_an_empty_line_after_its_headers() -> None:
    with pytest.raises(MultipartError, match="no empty line"):
        decode(b"--123\r\nContent-Disposition: form-data; name=a\r\n--123--")


# --- property-based: urllib3's encoder round-trips; arbitrary bytes never crash ---------

# Text a name or filename may hold: anything encodable, but not the three escapes that
# HTML's form encoding makes ambiguous (a literal "%22" reads back as '"').
names = st.text(st.characters(exclude_categories=["Cs"]), max_size=20).filter(
    lambda s: re.search("%(22|0D|0A)", s) is None
)
content_types = st.sampled_from(["text/plain", "application/octet-stream", "image/png"])
files = st.tuples(names, st.binary(max_size=200), content_types)
fields = st.lists(st.tuples(names, st.one_of(st.binary(max_size=200), files)), max_size=6)
boundaries = st.text("0123456789abcdefABCDEF'()+_,-./:=? ", min_size=1, max_size=70).filter(
    lambda b: not b.endswith(" ")
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(fields=fields, boundary=st.one_of(st.none(), boundaries))
def test_urllib3_encoded_bodies_round_trip(fields, boundary) -> None:
    body, content_type = encode_multipart_formdata(fields, boundary=boundary)
    actual = content_type.split("boundary=", 1)[1]
    for name, value in fields:
        pieces = [name] + (list(value[:2]) if isinstance(value, tuple) else [value])
        for piece in pieces:
            raw = piece if isinstance(piece, bytes) else piece.encode()
            assume(b"--" + actual.encode() not in raw)
    if boundary is not None and " " in boundary:
        content_type = f'multipart/form-data; boundary="{boundary}"'
    entries = decode(body, content_type)
    assert len(entries) == len(fields)
    for entry, (name, value) in zip(entries, fields, strict=True):
        assert entry.name == name
        if isinstance(value, tuple):
            filename, data, mime = value
            assert entry.filename == filename and entry.headers["Content-Type"] == mime
        else:
            data = value
            assert entry.filename is None and "Content-Type" not in entry.headers
        assert bytes(entry.data) == data


@settings(max_examples=200, deadline=None)
@given(
    name=names,
    data=st.binary(max_size=100),
    headers=st.dictionaries(
        st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True),
        st.from_regex(r"[!-~]([ !-~]{0,20}[!-~])?", fullmatch=True),
        max_size=3,
    ),
)
def test_extra_part_headers_round_trip(name, data, headers) -> None:
    field = RequestField(name, data, headers=headers)
    field.make_multipart()
    body, content_type = encode_multipart_formdata([field], boundary="b0undary")
    (entry,) = decode(body, content_type)
    assert entry.headers.multi_items()[1:] == list(headers.items())
    assert entry.name == name and bytes(entry.data) == data


def decodes_or_raises_mummy_error(body: bytes, content_type: str) -> None:
    try:
        entries = decode(body, content_type)
    except MultipartError:
        return
    for entry in entries:
        assert isinstance(entry.name, str) and isinstance(entry.data, memoryview)
        assert entry.data.obj is not None


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), content_type=st.text(max_size=60))
def test_arbitrary_bytes_and_content_types(body: bytes, content_type: str) -> None:
    decodes_or_raises_mummy_error(body, content_type)


fragments = st.sampled_from(
    [
        b"--123",
        b"--123--",
        b"\r\n",
        b"\r\n\r\n",
        b"Content-Disposition: form-data; ",
        b'name="a"',
        b"name=a",
        b"filename*=UTF-8''%C3%A9",
        b'filename="f"',
        b";",
        b":",
        b" ",
        b'"',
        b"%22",
        b"\xff",
        b"x",
    ]
)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(fragments, max_size=30))
def test_bodies_made_of_multipart_fragments(pieces: list[bytes]) -> None:
    decodes_or_raises_mummy_error(b"".join(pieces), "multipart/form-data; boundary=123")


@settings(max_examples=200, deadline=None)
@given(at=st.integers(0, len(TWO_PARTS) - 1), byte=st.integers(0, 255))
def test_one_changed_byte(at: int, byte: int) -> None:
    body = TWO_PARTS[:at] + bytes([byte]) + TWO_PARTS[at + 1 :]
    decodes_or_raises_mummy_error(body, "multipart/form-data; boundary=123")

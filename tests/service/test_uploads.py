"""Recognising images by their leading bytes."""

from __future__ import annotations

import pytest

from service.uploads.service import sniff_image_type


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xdb" + b"\x00" * 12, "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, "image/png"),
        (b"GIF89a" + b"\x00" * 10, "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00", "image/heif"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00", None),  # an MP4 video
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),  # a WAV file
        (b"<?xml version='1.0'?><svg", None),
        (b"\x89PNG", None),  # truncated signature
        (b"", None),
    ],
)
def test_sniffing(head: bytes, expected: str | None) -> None:
    assert sniff_image_type(head) == expected

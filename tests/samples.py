"""Files a buyer may send, made in the test: receipts as PDF and PNG, hostile ones."""

from __future__ import annotations

import struct
import zlib


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def build_pdf(objects: list[bytes], *, trailer: bytes = b"") -> bytes:
    """A well-formed PDF of ``objects`` (object ``n`` is ``objects[n - 1]``; 1 is the
    catalogue), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\n" % (len(objects) + 1, trailer)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


PDF_SECRETS = (
    b"SECRET-TITLE",
    b"Buyer Full Name",
    b"STEAL-COOKIE",
    b"ATTACHED-SECRET",
    b"secret.txt",
    b"SECOND-PAGE",
)


def receipt_pdf(title: bytes = b"SECRET-TITLE") -> bytes:
    """A two-page PDF whose first page is red on its left half and blue on its right, with
    what must never reach the jastiper: document metadata, a script run on opening, an
    attached file and a second page."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R"
            b" /Names << /EmbeddedFiles << /Names [(secret.txt) 7 0 R] >> >> >>",
            b"<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R >>",
            stream(b"1 0 0 rg 0 0 150 200 re f 0 0 1 rg 150 0 150 200 re f"),
            b"<< /S /JavaScript /JS (app.alert('STEAL-COOKIE')) >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 9 0 R >>",
            b"<< /Type /Filespec /F (secret.txt) /EF << /F 8 0 R >> >>",
            stream(b"ATTACHED-SECRET", b"/Type /EmbeddedFile "),
            stream(b"% SECOND-PAGE\n0 1 0 rg 0 0 300 200 re f"),
            b"<< /Title (" + title + b") /Author (Buyer Full Name) >>",
        ],
        trailer=b"/Info 10 0 R ",
    )

"""One input object's output, assembled in input order in a temp file of the object store's
temp area and published whole, once (objects.py): a failed or stopped object leaves nothing.

AssembleWith Line: each response (or, with filters and joins, each record's output) ends with
one `\\n`, added only where it does not end with one already; None: responses are concatenated
as the model sent them (AWS's two documented layouts; its newline handling is unconfirmed).
"""

from __future__ import annotations

import hashlib

from tideserve.objectstore.files import TempFile


class Assembler:
    def __init__(self, temp: TempFile, line: bool) -> None:
        self.temp = temp
        self.line = line
        self.md5 = hashlib.md5()
        self.records = 0

    def response(self, body: bytes, records: int) -> None:
        if self.line and body and not body.endswith(b"\n"):
            body += b"\n"
        self._write(body)
        self.records += records

    def record_outputs(self, outputs: list[bytes]) -> None:
        """Per-record outputs (filters, joins): one line each."""
        if outputs:
            self._write(b"\n".join(outputs) + b"\n")
        self.records += len(outputs)

    def _write(self, data: bytes) -> None:
        self.temp.write(data)
        self.md5.update(data)

    def finish(self) -> str:
        """Make the bytes durable; returns the ETag (MD5, as S3 gives a single PUT)."""
        self.temp.finish()
        return self.md5.hexdigest()

    def discard(self) -> None:
        self.temp.discard()

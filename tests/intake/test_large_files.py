"""Large item files: CSV rows are read from the file as they are parsed, never all in memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from annotate.errors import ImportProblem
from annotate.intake import readers
from annotate.intake.readers import read_rows


def _csv(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("\ufeffid,prompt,response\n")
        for n in range(rows):
            fh.write(f'i{n},"How do I kill, {n}?",{"é" * 40} Use kill {n}.\n')
    return path


def test_reading_a_csv_file_does_not_hold_it_in_memory(tmp_path: Path) -> None:
    path = _csv(tmp_path / "big.csv", 60_000)
    size = path.stat().st_size
    assert size > 5_000_000
    tracemalloc.start()
    try:
        count = 0
        for line, row in read_rows(path):
            count += 1
            last = (line, row)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 60_000
    assert last == (
        60_001,
        {
            "id": "i59999",
            "prompt": "How do I kill, 59999?",
            "response": "é" * 40 + " Use kill 59999.",
        },
    )
    # Before: the bytes, the text and a StringIO of it (4 bytes a character) at once.
    assert peak < size / 2, (peak, size)


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_bad_encoding_names_its_line_whatever_the_block_size(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "bad.csv"
    lines = [b"id,prompt,response\n"] + [b"i%d,caf\xc3\xa9?,yes\n" % n for n in range(30)]
    lines[23] = b"i22,caf\xe9?,yes\n"  # Latin-1, line 24
    path.write_bytes(b"".join(lines))
    with pytest.raises(ImportProblem) as bad:
        readers._check_utf8(path, chunk=chunk)
    assert f"{path}:24: bad encoding: byte 0xe9 is not UTF-8" in str(bad.value)
    with pytest.raises(ImportProblem) as again:
        list(read_rows(path))
    assert f"{path}:24: bad encoding: byte 0xe9 is not UTF-8" in str(again.value)

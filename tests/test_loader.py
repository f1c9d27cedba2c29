"""`oai load` with worker processes loads what it loads without them, in the same order of events."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from oai.formats.dc import build_dc
from oai.formats.safexml import canonical_bytes
from oai.loader import CHUNK, load
from oai.store.engine import make_engine, transaction
from oai.store.models import Record, RecordMetadata

N = 3 * CHUNK + 7  # several chunks in flight, the last one short


def _corpus(root) -> None:  # noqa: ANN001
    for i in range(N):
        sub = root / f"{i // 100:02d}"
        sub.mkdir(exist_ok=True)
        fields = [("title", f"Article {i} & <its> title", "en"), ("identifier", f"https://doi.org/10.5555/load.{i}", None)]
        (sub / f"{i:04d}.xml").write_bytes(canonical_bytes(build_dc(fields)))
    (root / "00" / "0005.xml").write_bytes(b"<not-closed>")  # a bad file is reported, the rest load
    (root / "01" / "0150.xml").write_bytes((root / "01" / "0149.xml").read_bytes())  # same DOI twice


def _stored(engine) -> dict:  # noqa: ANN001
    with transaction(engine) as s:
        rows = s.execute(select(Record.identifier, Record.citation, RecordMetadata.prefix, RecordMetadata.xml)
                         .join(RecordMetadata, RecordMetadata.record_id == Record.id))
        return {(r.identifier, r.prefix): (r.citation, r.xml) for r in rows}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_parallel_load_matches_a_serial_one(engine, tmp_path, _sqlite_template) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _corpus(corpus)
    results = {}
    for workers in (1, 2):
        path = tmp_path / f"store-{workers}.sqlite3"
        shutil.copy(_sqlite_template, path)
        target = make_engine(f"sqlite:///{path}")
        summary = load(target, [str(corpus)], repository_identifier="example.org", workers=workers)
        results[workers] = (summary.new, summary.failed, summary.warnings, _stored(target))
        target.dispose()
    serial, parallel = results[1], results[2]
    assert serial[0] == N - 2 and len(serial[3]) == N - 2
    assert [name.rsplit("/", 2)[-2:] for name, _ in serial[1]] == [["00", "0005.xml"], ["01", "0150.xml"]]
    assert "already used by" in serial[1][1][1]
    assert parallel == serial


def test_directories_are_listed_in_path_order(tmp_path) -> None:  # noqa: ANN001
    from pathlib import Path

    from oai.loader import SUFFIXES, discover

    for rel in ("a/x.xml", "a-b/x.xml", "a.xml", "A/z.XML", "a/b/c/d.nxml", "a/b.jats", "a/notes.txt", "b/.hidden.xml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"<x/>")
    expected = [str(p) for p in sorted(Path(tmp_path).rglob("*")) if p.is_file() and p.suffix.lower() in SUFFIXES]
    assert list(discover([str(tmp_path)])) == expected and len(expected) == 7

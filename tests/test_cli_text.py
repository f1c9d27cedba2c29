"""Words typed on the command line that the store cannot keep: bytes that are not UTF-8 (the shell passes them
to Python as lone surrogates) and control characters. An outside audit: `oai sets add`, `oai load --set`,
`oai delete`, `oai source show` and `oai harvest` ended in a traceback from the database driver or lxml, and a
set name lost its control characters silently."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from oai.store.engine import transaction
from oai.store.models import OAISet, Source

OAI = os.path.join(os.path.dirname(sys.executable), "oai")

REFUSED = [
    ([b"sets", b"add", b"cafe", b"Caf\xe9"], "Invalid value for '[NAME]': 'Caf\\udce9' is not UTF-8 text (a byte 0xe9)"),
    ([b"sets", b"add", b"demo", b"Demo", b"--description", b"line one\x01 two"],
     "Invalid value for '--description': 'line one\\x01 two' holds a control character (U+0001)"),
    ([b"sets", b"add", b"demo", b"Name\x1bx"], "'Name\\x1bx' holds a control character (U+001B)"),
    ([b"sets", b"add", b"demo", b"two\nlines"], "'two\\nlines' holds a control character (U+000A)"),
    ([b"load", b"--set", b"s1=Caf\xe9", b"/nowhere"], "Invalid value for '--set': 's1=Caf\\udce9' is not UTF-8"),
    ([b"delete", b"oai:example.org:caf\xe9"], "Invalid value for 'IDENTIFIER': 'oai:example.org:caf\\udce9'"),
    ([b"records", b"show", b"oai:example.org:\xff"], "'oai:example.org:\\udcff' is not UTF-8 text (a byte 0xff)"),
    ([b"source", b"add", b"Caf\xe9", b"http://127.0.0.1:9/oai"], "Invalid value for 'NAME': 'Caf\\udce9'"),
    ([b"source", b"add", b"x", b"http://127.0.0.1:9/oai\xe9"], "Invalid value for 'BASE_URL'"),
    ([b"source", b"show", b"\xe9"], "Invalid value for 'NAME': '\\udce9' is not UTF-8 text"),
    ([b"harvest", b"\xe9"], "Invalid value for '[NAME]': '\\udce9' is not UTF-8 text"),
    ([b"harvest", b"runs", b"\xe9"], "Invalid value for '[NAME]': '\\udce9' is not UTF-8 text"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[f"{a[0].decode()}-{i}" for i, (a, _) in enumerate(REFUSED)])
def test_a_word_the_store_cannot_keep_is_a_usage_error_naming_it(database_url: str, engine, args, message) -> None:  # noqa: ANN001
    done = subprocess.run([OAI, "--database", database_url, *args], capture_output=True, timeout=60,
                          env={**os.environ, "LC_ALL": "C.UTF-8"})
    err = done.stderr.decode("utf-8", "backslashreplace")
    assert done.returncode == 2, err
    assert message in err and "Traceback" not in err, err
    with transaction(engine) as session:  # nothing written
        assert session.scalar(select(func.count()).select_from(OAISet)) == 0
        assert session.scalar(select(func.count()).select_from(Source)) == 0


def test_a_description_may_have_several_lines_and_a_name_tabs(database_url: str, engine) -> None:  # noqa: ANN001
    done = subprocess.run([OAI, "--database", database_url, "sets", "add", "caf", "Café\tBar ✓",
                           "--description", "One line.\nAnother line."], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with transaction(engine) as session:
        stored = session.scalars(select(OAISet)).one()
        assert (stored.spec, stored.name) == ("caf", "Café\tBar ✓")
        assert "One line.\nAnother line." in stored.description

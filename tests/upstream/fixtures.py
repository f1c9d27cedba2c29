"""pytest fixtures for the test upstream; a conftest pulls them in with
`from upstream.fixtures import upstream, upstream_factory`  (or `pytest_plugins`).

Every server they start is stopped at teardown, also when the test failed, and a bug
inside the upstream itself (a traceback in `Upstream.errors`) fails the test.
"""

from __future__ import annotations

import pytest

from .server import Upstream


def _check(up: Upstream) -> None:
    if up.errors:
        pytest.fail("the test upstream itself failed:\n" + "\n".join(up.errors), pytrace=False)


@pytest.fixture
def upstream():
    """A running Upstream serving an empty SyntheticRepository; configure it in the test:
    upstream.repo.add(...), upstream.serve("tethys"), upstream.add_fault(...)."""
    with Upstream.synthetic() as up:
        yield up
    _check(up)


@pytest.fixture
def upstream_factory():
    """make(content=None) -> a running Upstream; for tests that need several upstreams."""
    started: list[Upstream] = []

    def make(content=None) -> Upstream:
        started.append(Upstream(content).start())
        return started[-1]

    yield make
    for up in started:
        up.stop()
    for up in started:
        _check(up)

"""A test upstream OAI-PMH server that misbehaves on demand, for the harvester's tests.

`Upstream` runs a real HTTP server on 127.0.0.1 (server.py) serving either a generated
repository with real OAI-PMH semantics (repository.py) or real captured responses
(replay.py), bent by faults that fire a bounded number of times (faults.py). The pytest
fixtures are in fixtures.py. Nothing here touches the code under test.

    with Upstream.synthetic(sample_records(25), page_size=10) as up:
        up.add_fault(faults.ServiceUnavailable(retry_after=1), page=2)
        harvest(up.base_url)            # whatever is under test
        assert up.log[1].status == 503
"""

from . import faults
from .protocol import DAY, SECONDS, Reply
from .replay import DATASETS, Replay
from .repository import Record, SyntheticRepository, sample_records
from .server import LogEntry, Upstream

__all__ = ["DATASETS", "DAY", "SECONDS", "LogEntry", "Record", "Replay", "Reply",
           "SyntheticRepository", "Upstream", "faults", "sample_records"]

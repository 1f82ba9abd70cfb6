"""
pytest glue of the live-state suite: async tests run in their own event
loop, and each test appends "PASS/FAIL test/live::<file>::<test>" to
$RESULTS (a skipped test counts as a failure: it proves nothing).

Fixtures: `live`, the session's cluster (one worker, short heartbeat and
typing timings), and `two`, a cluster with chat.workers = 2 and the same
timings.  Both are always stopped by pid.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pytest_glue  # noqa: E402
import livelib  # noqa: E402

pytest_glue.install(globals(), "test/live", 60, livelib.Cluster)


@pytest.fixture(scope="session")
def live():
    c = livelib.start("live")
    yield c
    c.stop()


@pytest.fixture(scope="session")
def two():
    c = livelib.start("live-two", **{"chat.workers": "2"})
    yield c
    c.stop()

"""
pytest glue of the live-state suite: async tests run in their own event
loop, and each test appends "PASS/FAIL test/live::<file>::<test>" to
$RESULTS (a skipped test counts as a failure: it proves nothing).

Fixtures: `live`, the session's cluster (one worker, short heartbeat and
typing timings), and `two`, a cluster with chat.workers = 2 and the same
timings.  Both are always stopped by pid.
"""
import asyncio
import atexit
import inspect
import os

import pytest

import livelib

TEST_TIMEOUT = 60


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {n: pyfuncitem.funcargs[n] for n in names}
    asyncio.run(asyncio.wait_for(fn(**kwargs), timeout=TEST_TIMEOUT))
    return True


_outcomes = {}


def _short_name(nodeid):
    path, _, rest = nodeid.partition("::")
    return os.path.basename(path)[:-3] + "::" + rest if path.endswith(".py") else nodeid


def pytest_runtest_logreport(report):
    name = _short_name(report.nodeid)
    if report.failed:
        _outcomes[name] = "FAIL"
    elif report.when == "call" and report.passed:
        _outcomes.setdefault(name, "PASS")
    elif report.skipped and name not in _outcomes:
        _outcomes[name] = "SKIP"


def pytest_sessionfinish(session, exitstatus):
    results = os.environ.get("RESULTS")
    if not results:
        return
    with open(results, "a") as f:
        for name, status in _outcomes.items():
            f.write("%s test/live::%s\n" % ("PASS" if status == "PASS" else "FAIL", name))
        if not _outcomes and exitstatus != 0:
            f.write("FAIL test/live (exit %d, no test ran)\n" % exitstatus)


@atexit.register
def _stop_leftovers():
    for c in list(livelib.Cluster._all):
        c.stop()


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

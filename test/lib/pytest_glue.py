"""
pytest glue shared by the Python suites that reuse test/integration's
cluster fixtures (test/integration, test/security): async tests run in their own
event loop with a timeout, each test appends "PASS/FAIL <suite>::<file>::<test>"
to $RESULTS (a skipped test counts as a failure: it proves nothing), and
every cluster still running at exit is stopped by pid.

Issue 17: with CHAT_TOPOLOGY=gateway|mixed the suite's name says so
("test/integration[mixed]"), and a test marked worker_only (conftest.py:
about the in-server worker itself) is written as "SKIP ... (reason)": not
a pass, not a failure.

A suite's conftest.py calls install(globals(), "test/integration", 90, Cluster).
"""
import asyncio
import atexit
import inspect
import os

import pytest

WHY_LINES = 12


def install(namespace, suite, test_timeout, cluster_class):
    """Defines the hooks in the conftest module whose globals are namespace."""
    outcomes = {}
    reasons = {}
    whys = {}
    topology = os.environ.get("CHAT_TOPOLOGY", "worker")
    if topology != "worker":
        suite = "%s[%s]" % (suite, topology)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(pyfuncitem):
        fn = pyfuncitem.obj
        if not inspect.iscoroutinefunction(fn):
            return None
        names = pyfuncitem._fixtureinfo.argnames
        kwargs = {n: pyfuncitem.funcargs[n] for n in names}
        asyncio.run(asyncio.wait_for(fn(**kwargs), timeout=test_timeout))
        return True

    def short_name(nodeid):
        path, _, rest = nodeid.partition("::")
        return os.path.basename(path)[:-3] + "::" + rest if path.endswith(".py") else nodeid

    def pytest_runtest_logreport(report):
        name = short_name(report.nodeid)
        if report.failed:
            outcomes[name] = "FAIL"
            # test/run prints these at the end: CI keeps only the log's tail
            lines = [l for l in str(report.longrepr).splitlines() if l.startswith("E ")]
            whys.setdefault(name, (lines or str(report.longrepr).splitlines()[-1:])[:WHY_LINES])
        elif report.when == "call" and report.passed:
            outcomes.setdefault(name, "PASS")
        elif report.skipped and name not in outcomes:
            outcomes[name] = "SKIP"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            if "in-server worker only" in reason or "through HAProxy" in reason:
                outcomes[name] = "TOPOLOGY"
                reasons[name] = reason.replace("Skipped: ", "")

    def pytest_sessionfinish(session, exitstatus):
        results = os.environ.get("RESULTS")
        if not results:
            return
        with open(results, "a") as f:
            for name, status in outcomes.items():
                if status == "TOPOLOGY":
                    f.write("SKIP %s::%s (%s)\n" % (suite, name, reasons[name]))
                    continue
                f.write("%s %s::%s\n" % ("PASS" if status == "PASS" else "FAIL", suite, name))
                for line in whys.get(name, []):
                    f.write("WHY %s::%s: %s\n" % (suite, name, line))
            if not outcomes and exitstatus != 0:
                f.write("FAIL %s (exit %d, no test ran)\n" % (suite, exitstatus))

    @atexit.register
    def stop_leftovers():
        for c in list(cluster_class._all):
            c.stop()

    namespace.update(pytest_pyfunc_call=pytest_pyfunc_call,
                     pytest_runtest_logreport=pytest_runtest_logreport,
                     pytest_sessionfinish=pytest_sessionfinish)

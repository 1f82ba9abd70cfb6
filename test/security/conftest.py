"""
pytest glue of the security suite: async tests run in their own event loop,
and each test appends "PASS/FAIL test/security::<file>::<test>" to $RESULTS
(a skipped test counts as a failure: it proves nothing).  Clusters are made
per module with seclib.start() and always stopped by pid.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pytest_glue  # noqa: E402
import seclib  # noqa: E402

pytest_glue.install(globals(), "test/security", 150, seclib.Cluster)

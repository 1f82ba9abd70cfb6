"""
The suite's own checks must be able to fail: the stream checker rejects a
gap, a repeat, a reordering, a wrong start and a short stream.
"""
import pytest

from conftest import assert_gap_free


@pytest.mark.parametrize("seqs,start,end", [
    ([1, 2, 4], 0, 4),       # gap
    ([1, 2, 2, 3], 0, 3),    # repeat
    ([1, 3, 2], 0, 3),       # reordered
    ([2, 3], 0, 3),          # does not start after start
    ([1, 2], 0, 3),          # short
    ([1, 2, 3, 4], 0, 3),    # past the end
])
def test_assert_gap_free_rejects(seqs, start, end):
    with pytest.raises(AssertionError):
        assert_gap_free(seqs, start, end)


def test_assert_gap_free_accepts():
    assert_gap_free([4, 5, 6], 3, 6)
    assert_gap_free([], 7, 7)

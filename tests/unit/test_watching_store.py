"""The informer's store: changes only when a kept value changes; a relist's diff."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jobwarden.watching import Backoff, Change, Store, paths

A, B, C = ("ns", "a"), ("ns", "b"), ("ns", "c")


def test_apply_reports_a_change_only_when_the_value_changed() -> None:
    store: Store[str] = Store()
    assert store.apply(A, "1") == Change(key=A, old=None, new="1")
    assert store.apply(A, "1") is None
    assert store.apply(A, "2") == Change(key=A, old="1", new="2")
    assert store.apply(A, None) == Change(key=A, old="2", new=None)
    assert store.apply(A, None) is None
    assert len(store) == 0


def test_a_relist_deletes_what_it_no_longer_lists() -> None:
    """An object deleted while no watch was open (a 410 gap, a restart of the stream)
    gets a deletion, with its last kept value, so no phantom stays behind."""
    store: Store[str] = Store()
    for key in (A, B, C):
        store.apply(key, "1")
    store.begin_relist()
    assert store.apply(A, "1") is None  # unchanged: nothing to tell
    assert store.apply(C, "2") == Change(key=C, old="1", new="2")
    assert store.end_relist() == [Change(key=B, old="1", new=None)]
    assert sorted(store.values()) == ["1", "2"]


def test_a_relisted_object_no_longer_kept_counts_as_listed() -> None:
    store: Store[str] = Store()
    store.apply(A, "1")
    store.begin_relist()
    assert store.apply(A, None) == Change(key=A, old="1", new=None)
    assert store.end_relist() == []


@given(
    before=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 3)),
    after=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 3)),
)
def test_a_relist_leaves_exactly_the_listing_and_reports_every_difference(
    before: dict[str, int], after: dict[str, int]
) -> None:
    store: Store[int] = Store()
    for name, value in before.items():
        store.apply(("ns", name), value)
    store.begin_relist()
    changes = [c for name, v in after.items() if (c := store.apply(("ns", name), v))]
    changes += store.end_relist()
    assert {k[1]: store.get(k) for k in [("ns", n) for n in after]} == after
    assert len(store) == len(after)
    expected = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
    assert {c.key[1] for c in changes} == expected
    for c in changes:
        assert (c.old, c.new) == (before.get(c.key[1]), after.get(c.key[1]))


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    delays = [backoff.next() for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next() <= 1.0


def test_one_path_per_namespace_or_one_cluster_wide() -> None:
    template = "/apis/batch/v1/{ns}jobs"
    assert paths(collection=template, namespaces=()) == ["/apis/batch/v1/jobs"]
    assert paths(collection=template, namespaces=("a", "b")) == [
        "/apis/batch/v1/namespaces/a/jobs",
        "/apis/batch/v1/namespaces/b/jobs",
    ]

"""The informer's store: changes only when a kept value changes; a relist's diff;
pages and watch events interleaved."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jobwarden.store import Change, Store
from jobwarden.watching import Backoff, paths

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


# --- a listing read while the watch is open --------------------------------------------
# Every page of a listing is a snapshot at its first page's version; the watch opened
# from that version tells only what changed after it. So the watch is always newer.


def test_a_page_does_not_undo_a_change_the_watch_told_during_the_listing() -> None:
    store: Store[str] = Store()
    store.begin_relist()
    assert store.listed(A, "snapshot-a") == Change(key=A, old=None, new="snapshot-a")
    assert store.watched(B, "watch-b") == Change(key=B, old=None, new="watch-b")
    assert store.listed(B, "snapshot-b") is None, "the page's B predates the watch's"
    assert store.watched(A, "watch-a") == Change(key=A, old="snapshot-a", new="watch-a")
    assert store.end_relist() == []
    assert (store.get(A), store.get(B)) == ("watch-a", "watch-b")


def test_an_object_the_watch_deleted_is_not_brought_back_by_a_later_page() -> None:
    """The tombstone lasts until the listing ends; then the key is an ordinary one again."""
    store: Store[str] = Store()
    store.apply(A, "old")
    store.begin_relist()
    assert store.watched(A, None) == Change(key=A, old="old", new=None)
    assert store.listed(A, "snapshot") is None, "resurrected by the snapshot"
    assert store.get(A) is None
    assert store.end_relist() == [], "deleted once, not twice"
    assert store.watched(A, "created-again") == Change(key=A, old=None, new="created-again")


def test_an_object_created_during_the_listing_is_not_deleted_by_its_end() -> None:
    store: Store[str] = Store()
    store.apply(A, "1")
    store.begin_relist()
    store.watched(C, "new")
    store.listed(A, "1")
    assert store.end_relist() == []
    assert store.get(C) == "new"


def test_after_the_listing_a_tombstone_no_longer_hides_anything() -> None:
    store: Store[str] = Store()
    store.begin_relist()
    store.watched(A, None)
    store.end_relist()
    store.begin_relist()
    assert store.listed(A, "relisted") == Change(key=A, old=None, new="relisted")


def test_a_copy_read_ahead_is_kept_until_a_page_or_the_watch_tells() -> None:
    """Read ahead of a slow listing (a schedule due soon), a copy is acted on at once;
    the page or the watch replaces it, and a copy read later than either is ignored."""
    store: Store[str] = Store()
    store.begin_relist()
    assert store.hinted(A, "ahead") == Change(key=A, old=None, new="ahead")
    assert store.listed(A, "snapshot") == Change(key=A, old="ahead", new="snapshot")
    assert store.hinted(A, "late") is None, "a copy read ahead undid the page"
    store.watched(B, "watch")
    assert store.hinted(B, "late") is None, "a copy read ahead undid the watch"
    assert store.end_relist() == []
    assert (store.get(A), store.get(B)) == ("snapshot", "watch")


def test_a_copy_read_ahead_that_nothing_confirms_is_forgotten_at_the_listing_end() -> None:
    """Named by a stale list (deleted since, or no longer selected): gone by the end."""
    store: Store[str] = Store()
    store.begin_relist()
    store.hinted(C, "ahead")
    assert store.end_relist() == [Change(key=C, old="ahead", new=None)]
    assert store.get(C) is None
    assert store.hinted(C, "outside a listing") is None
    assert store.get(C) is None


_STEP = st.tuples(
    st.sampled_from(["page", "watch", "ahead"]),
    st.sampled_from("abcd"),
    st.one_of(st.none(), st.integers(0, 3)),
)


@given(before=st.dictionaries(st.sampled_from("abcd"), st.integers(0, 3)), steps=st.lists(_STEP))
def test_interleaved_pages_and_events_leave_the_watch_over_the_snapshot(
    before: dict[str, int], steps: list[tuple[str, str, int | None]]
) -> None:
    """Whatever the interleaving, the store ends as the snapshot with the watch's
    events applied on top, and its changes replay from ``before`` to that state.
    Copies read ahead of the listing leave no trace once it ends."""
    store: Store[int] = Store()
    for name, value in before.items():
        store.apply(("ns", name), value)
    snapshot: dict[str, int] = {}
    watched: dict[str, int | None] = {}
    changes: list[Change[int]] = []
    store.begin_relist()
    for source, name, value in steps:
        if source == "page":
            if name in snapshot or value is None:
                continue  # a listing holds each object once, and only existing ones
            snapshot[name] = value
            change = store.listed(("ns", name), value)
        elif source == "ahead":
            if value is None:
                continue  # a copy read ahead is of an object that exists
            change = store.hinted(("ns", name), value)
        else:
            watched[name] = value
            change = store.watched(("ns", name), value)
        if change is not None:
            changes.append(change)
    changes += store.end_relist()
    expected = {**snapshot, **watched}
    expected = {k: v for k, v in expected.items() if v is not None}
    kept = {name: store.get(("ns", name)) for name in "abcd"}
    assert {name: v for name, v in kept.items() if v is not None} == expected
    assert len(store) == len(expected)
    replayed: dict[str, int] = dict(before)
    for c in changes:
        assert c.old == replayed.get(c.key[1]), "each change starts where the last left"
        if c.new is None:
            replayed.pop(c.key[1])
        else:
            replayed[c.key[1]] = c.new
    assert replayed == expected

"""The durable spool on a real SQLite file: seq, ack, restart, overflow thinning, agent state."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_agents.spool import Spool, SpooledMessage


def payload(seq: int) -> bytes:
    return b'{"seq":%d}' % seq


def fill(spool: Spool, kinds: str) -> list[SpooledMessage]:
    """Append one message per letter: `t` telemetry, `e` event."""
    names = {"t": "telemetry", "e": "event"}
    return [spool.append(names[letter], payload) for letter in kinds]


def seqs(spool: Spool, kind: str | None = None) -> list[int]:
    return [m.seq for m in spool.pending(0, limit=10_000) if kind is None or m.kind == kind]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "cab-17.db"


@pytest.fixture
def spool(path: Path) -> Iterator[Spool]:
    spool = Spool(path, max_messages=10)
    yield spool
    spool.close()


# --- seq ----------------------------------------------------------------------------------------

def test_a_new_spool_has_given_out_no_seq_and_holds_nothing(spool: Spool) -> None:
    assert (spool.last_seq, spool.acked_seq, spool.thinned, len(spool)) == (0, 0, 0, 0)
    assert spool.pending(0) == []


def test_seq_starts_at_1_and_increases_by_one_over_telemetry_and_events(spool: Spool) -> None:
    messages = fill(spool, "tetet")
    assert [m.seq for m in messages] == [1, 2, 3, 4, 5]
    assert [m.kind for m in messages] == ["telemetry", "event"] * 2 + ["telemetry"]
    assert spool.last_seq == 5


def test_the_message_is_built_with_the_seq_it_is_stored_under(spool: Spool) -> None:
    fill(spool, "tt")
    message = spool.append("event", payload)
    assert message == SpooledMessage(3, "event", b'{"seq":3}')
    assert spool.pending(2) == [message]


def test_seq_survives_closing_and_reopening(path: Path) -> None:
    first = Spool(path, max_messages=10)
    fill(first, "tte")
    first.close()
    second = Spool(path, max_messages=10)
    try:
        assert second.last_seq == 3
        assert second.append("telemetry", payload).seq == 4
        assert seqs(second) == [1, 2, 3, 4]
    finally:
        second.close()


def test_a_restart_after_everything_was_acked_never_reuses_a_seq(path: Path) -> None:
    first = Spool(path, max_messages=10)
    fill(first, "tetet")
    assert first.ack(5) == 5
    assert len(first) == 0
    first.close()
    second = Spool(path, max_messages=10)
    try:
        assert (len(second), second.acked_seq, second.last_seq) == (0, 5, 5)
        assert second.append("event", payload).seq == 6
    finally:
        second.close()


def test_a_build_callback_that_raises_stores_nothing_and_consumes_no_seq(spool: Spool) -> None:
    fill(spool, "t")

    def broken(seq: int) -> bytes:
        raise RuntimeError(f"cannot build message {seq}")

    with pytest.raises(RuntimeError, match="cannot build message 2"):
        spool.append("event", broken)
    assert (len(spool), spool.last_seq, seqs(spool)) == (1, 1, [1])
    assert spool.append("event", payload).seq == 2


def test_a_payload_that_is_not_utf8_stores_nothing_and_consumes_no_seq(spool: Spool) -> None:
    with pytest.raises(UnicodeDecodeError):
        spool.append("telemetry", lambda seq: b"\xff")
    assert (len(spool), spool.last_seq) == (0, 0)


@pytest.mark.parametrize("kind", ["status", "Telemetry", ""])
def test_an_unknown_message_kind_is_refused(spool: Spool, kind: str) -> None:
    with pytest.raises(ValueError, match="unknown message kind"):
        spool.append(kind, payload)
    assert spool.last_seq == 0


def test_a_spool_bound_below_10_messages_is_refused(path: Path) -> None:
    with pytest.raises(ValueError, match="at least 10"):
        Spool(path, max_messages=9)


# --- pending and ack ----------------------------------------------------------------------------

def test_pending_lists_messages_after_a_seq_in_seq_order_up_to_a_limit(spool: Spool) -> None:
    fill(spool, "tetete")
    assert [m.seq for m in spool.pending(0)] == [1, 2, 3, 4, 5, 6]
    assert [m.seq for m in spool.pending(2, limit=3)] == [3, 4, 5]
    assert [m.seq for m in spool.pending(5)] == [6]
    assert spool.pending(6) == []


def test_ack_drops_every_message_up_to_and_including_its_seq(spool: Spool) -> None:
    fill(spool, "tetete")
    assert spool.ack(4) == 4
    assert (seqs(spool), len(spool), spool.acked_seq) == ([5, 6], 2, 4)


def test_acking_the_same_or_an_older_seq_again_changes_nothing(spool: Spool) -> None:
    fill(spool, "tetete")
    spool.ack(4)
    assert spool.ack(4) == 0
    assert spool.ack(2) == 0
    assert (seqs(spool), len(spool), spool.acked_seq) == ([5, 6], 2, 4)


def test_an_ack_beyond_the_last_seq_given_out_is_ignored(spool: Spool) -> None:
    fill(spool, "tet")
    assert spool.ack(4) == 0
    assert (seqs(spool), len(spool), spool.acked_seq) == ([1, 2, 3], 3, 0)


def test_an_ack_of_zero_drops_nothing(spool: Spool) -> None:
    fill(spool, "te")
    assert spool.ack(0) == 0
    assert seqs(spool) == [1, 2]


def test_ack_and_pending_survive_a_restart(path: Path) -> None:
    first = Spool(path, max_messages=10)
    fill(first, "tetet")
    first.ack(2)
    first.close()
    second = Spool(path, max_messages=10)
    try:
        assert (seqs(second), len(second), second.acked_seq) == ([3, 4, 5], 3, 2)
        assert second.pending(0)[0].payload == b'{"seq":3}'
    finally:
        second.close()


# --- overflow -----------------------------------------------------------------------------------

MIX = "tttettteettttettttteetttttettt"  # 30 messages: 7 events, 23 telemetry


def test_overflow_thins_old_telemetry_and_keeps_every_event(spool: Spool) -> None:
    messages = fill(spool, MIX)
    events = [m.seq for m in messages if m.kind == "event"]
    newest_telemetry = max(m.seq for m in messages if m.kind == "telemetry")
    kept = seqs(spool)
    assert seqs(spool, "event") == events
    assert newest_telemetry in kept
    assert len(spool) == len(kept) <= 10
    assert spool.thinned == len(MIX) - len(kept)
    assert spool.last_seq == len(MIX)
    assert kept == sorted(kept)


def test_the_thinned_counter_grows_with_each_overflow_and_survives_a_restart(path: Path) -> None:
    spool = Spool(path, max_messages=10)
    fill(spool, "t" * 10)
    assert spool.thinned == 0
    fill(spool, "t")  # the 11th: telemetry 2 and 4 of the older half go, the oldest stays
    assert (spool.thinned, seqs(spool)) == (2, [1, 3, 5, 6, 7, 8, 9, 10, 11])
    fill(spool, "t" * 5)
    assert spool.thinned > 2
    thinned = spool.thinned
    spool.close()
    reopened = Spool(path, max_messages=10)
    try:
        assert reopened.thinned == thinned
        assert len(reopened) == len(seqs(reopened)) == 16 - thinned
    finally:
        reopened.close()


def test_a_spool_of_only_events_grows_past_its_bound_and_loses_nothing(spool: Spool) -> None:
    fill(spool, "e" * 25)
    assert seqs(spool) == list(range(1, 26))
    assert (len(spool), spool.thinned) == (25, 0)


def test_a_spool_full_of_events_keeps_every_event_and_the_newest_telemetry(spool: Spool) -> None:
    fill(spool, "e" * 9 + "ttt")
    assert seqs(spool, "event") == list(range(1, 10))
    assert 12 in seqs(spool, "telemetry")


def test_thinning_keeps_the_oldest_telemetry_so_the_history_keeps_its_span(
        spool: Spool) -> None:
    fill(spool, "t" * 11)
    assert 1 in seqs(spool)


acks = st.integers(0, 80).map(lambda n: f"ack {n}")
operations = st.lists(st.sampled_from(["telemetry", "event"]) | acks, max_size=60)


@settings(max_examples=60, deadline=None)
@given(steps=operations)
def test_any_mix_of_appends_and_acks_keeps_every_unacked_event_and_the_newest_telemetry(
        steps: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder) / "spool.db", max_messages=10)
        try:
            events: list[int] = []
            newest_telemetry = 0
            acked = 0
            for step in steps:
                if step.startswith("ack "):
                    seq = int(step[4:])
                    spool.ack(seq)
                    if seq <= spool.last_seq:
                        acked = max(acked, seq)
                    continue
                message = spool.append(step, payload)
                if step == "event":
                    events.append(message.seq)
                else:
                    newest_telemetry = message.seq
            kept = seqs(spool)
            assert spool.last_seq == sum(1 for s in steps if not s.startswith("ack "))
            assert spool.acked_seq == acked
            assert kept == sorted(kept) and all(seq > acked for seq in kept)
            assert seqs(spool, "event") == [seq for seq in events if seq > acked]
            if newest_telemetry > acked:
                assert newest_telemetry in kept
            assert len(spool) == len(kept)
            assert len(kept) <= max(10, len(seqs(spool, "event")) + 2)
        finally:
            spool.close()


# --- agent state --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    None, 0, "cab-17", [1, 2], {"battery_pct": 87, "door_open": False, "pads": "2027-05-01"}])
def test_saved_state_is_loaded_back_after_a_restart(path: Path, value: object) -> None:
    first = Spool(path, max_messages=10)
    first.save_state("last_reading", value)
    first.close()
    second = Spool(path, max_messages=10)
    try:
        assert second.load_state("last_reading") == value
    finally:
        second.close()


def test_state_never_saved_loads_as_none(spool: Spool) -> None:
    assert spool.load_state("last_reading") is None


def test_saving_state_again_replaces_it_and_keys_are_separate(spool: Spool) -> None:
    spool.save_state("a", 1)
    spool.save_state("a", 2)
    spool.save_state("b", "x")
    assert (spool.load_state("a"), spool.load_state("b")) == (2, "x")


def test_state_keys_cannot_clobber_the_seq_counter(spool: Spool) -> None:
    fill(spool, "tt")
    spool.save_state("next_seq", 1)
    assert spool.append("event", payload).seq == 3

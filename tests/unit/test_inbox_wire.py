"""Inbox payloads and read receipts (contract §1, `responders/{id}/inbox` and `inbox/read`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from alarm_core.errors import Refused
from alarm_core.inbox import Reader, word
from alarm_core.wire import RESPONDER_TOPIC, inbox_payload, news_topic, parse_read_receipt

SENT = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
ENGLISH = Reader("r-1", "app", "en", "NL-UT", "Europe/Amsterdam", "en_NL")


def test_an_inbox_payload_carries_the_contracts_fields_and_leaves_out_an_absent_expiry() -> None:
    assert inbox_payload(7, "news", "Course", "On Friday", SENT, None) == {
        "v": 1, "message_id": 7, "kind": "news", "subject": "Course", "body": "On Friday",
        "sent_at": "2026-11-25T14:00:00Z"}
    assert inbox_payload(8, "questionnaire", "s", "b", SENT, SENT, "https://q/x")["url"] == \
        "https://q/x"


def test_region_news_has_a_topic_of_its_own_outside_every_responders_topics() -> None:
    assert news_topic("NL-UT") == "regions/NL-UT/news"
    assert RESPONDER_TOPIC.fullmatch("responders/r-1/inbox/read").groups() == ("r-1",
                                                                                "inbox/read")
    assert RESPONDER_TOPIC.fullmatch("responders/r-1/inbox") is None


def test_a_read_receipt_gives_the_message_and_the_time() -> None:
    receipt = parse_read_receipt({"v": 1, "message_id": 12, "ts": "2026-11-25T15:00:00+01:00"})

    assert (receipt.message_id, receipt.ts) == (12, SENT)
    assert parse_read_receipt({"v": 1, "message_id": 12}).ts is None


@pytest.mark.parametrize("body", [
    [12], "12", None, {"message_id": 12}, {"v": 2, "message_id": 12},
    {"v": True, "message_id": 12}, {"v": 1}, {"v": 1, "message_id": "12"},
    {"v": 1, "message_id": True}, {"v": 1, "message_id": 0}, {"v": 1, "message_id": 1.5},
    {"v": 1, "message_id": 2**63}, {"v": 1, "message_id": 1, "ts": "yesterday"},
    {"v": 1, "message_id": 1, "ts": "2026-11-25T15:00:00"},
])
def test_a_malformed_read_receipt_is_refused_with_a_reason(body: Any) -> None:
    with pytest.raises(Refused) as refused:
        parse_read_receipt(body)

    assert refused.value.code in ("invalid_body", "invalid_field")


def test_news_is_shown_as_written_and_system_messages_are_worded() -> None:
    assert word("news", {}, ENGLISH, "Course", "On Friday").subject == "Course"
    expired = word("certificate", {"valid_until": "2026-12-01", "expired": True}, ENGLISH)
    expiring = word("certificate", {"valid_until": "2026-12-01", "expired": False}, ENGLISH)
    questionnaire = word("questionnaire", {"url": "https://q/x", "token": "x",
                                           "expires_at": "2026-11-28T14:10:00Z"}, ENGLISH)

    assert "expired" in expired.subject and "1 December 2026" in expired.body
    assert "soon" in expiring.subject and "1 December 2026" in expiring.body
    assert questionnaire.url == "https://q/x" and "https://q/x" in questionnaire.body
    assert "15:10" in questionnaire.body  # Utrecht time

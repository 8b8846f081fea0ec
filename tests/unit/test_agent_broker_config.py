"""Mosquitto configuration: `$7$` password hashes, the contract's ACL, files written privately."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest

from device_agents.broker_config import (
    acl_text,
    mosquitto_conf,
    mosquitto_password_hash,
    read_credentials,
    write_broker_config,
)

HASH_RE = re.compile(r"^\$7\$101\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$")
# Made here by Mosquitto 2.0.11's own tool: `mosquitto_passwd -b pw cab-17 'correct horse battery'`.
MOSQUITTO_PASSWD_LINE = ("cab-17:$7$101$Ej8wi15XstX5IZjC$PKbyaR3XVNSW+26tLKphFywJGoxIonNBEjsuiCgzt"
                         "DE5WisPZn8tRT+RxHPgIDe/LoUMclGQJPOM9NmiD6A0UA==")


def verify(password: str, hashed: str) -> bool:
    """Check a `$7$` hash the way Mosquitto does: PBKDF2-SHA512 over the stored salt."""
    match = HASH_RE.match(hashed)
    assert match, hashed
    salt, digest = (base64.b64decode(part) for part in match.groups())
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101) == digest


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- password hashes ----------------------------------------------------------------------------

def test_a_password_hash_has_mosquittos_pbkdf2_sha512_shape() -> None:
    match = HASH_RE.match(mosquitto_password_hash("s3cret"))
    assert match
    salt, digest = (base64.b64decode(part) for part in match.groups())
    assert (len(salt), len(digest)) == (12, 64)


def test_a_hash_with_a_known_salt_verifies_with_hashlib() -> None:
    salt = bytes(range(12))
    hashed = mosquitto_password_hash("s3cret", salt=salt)
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)
    assert hashed == f"$7$101${base64.b64encode(salt).decode()}$" \
                     f"{base64.b64encode(expected).decode()}"
    assert verify("s3cret", hashed)
    assert not verify("s3cret ", hashed)


def test_our_hash_matches_mosquitto_passwd_for_the_same_salt() -> None:
    user, hashed = MOSQUITTO_PASSWD_LINE.split(":", 1)
    salt = base64.b64decode(hashed.split("$")[3])
    assert f"{user}:{mosquitto_password_hash('correct horse battery', salt=salt)}" == \
        MOSQUITTO_PASSWD_LINE


def test_each_hash_gets_a_fresh_salt() -> None:
    assert mosquitto_password_hash("same") != mosquitto_password_hash("same")


def test_non_ascii_passwords_are_hashed_as_utf8() -> None:
    hashed = mosquitto_password_hash("Grüezi-äöü", salt=b"0123456789ab")
    assert verify("Grüezi-äöü", hashed)


# --- ACL ----------------------------------------------------------------------------------------

CABINET_RULES = [
    "pattern write aed/%u/telemetry", "pattern write aed/%u/event", "pattern write aed/%u/status",
    "pattern read aed/%u/ack", "pattern read aed/%u/cmd"]
RESPONDER_RULES = [
    "pattern read responders/%u/alert", "pattern read responders/%u/cancel",
    "pattern read responders/%u/questionnaire", "pattern read responders/%u/notice",
    "pattern read responders/%u/inbox", "pattern write responders/%u/response",
    "pattern write responders/%u/location", "pattern write responders/%u/inbox/read"]
NEWS_RULES = ["pattern read regions/+/news"]


def acl_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_the_acl_holds_exactly_the_contracts_cabinet_and_responder_patterns() -> None:
    patterns = [line for line in acl_lines(acl_text()) if line.startswith("pattern ")]
    assert sorted(patterns) == sorted(CABINET_RULES + RESPONDER_RULES + NEWS_RULES)


def test_the_fleet_service_reads_and_writes_everything_under_every_root() -> None:
    lines = acl_lines(acl_text())
    start = lines.index("user fleet")
    assert lines[start + 1:start + 4] == ["topic readwrite aed/#", "topic readwrite responders/#",
                                          "topic readwrite regions/#"]


def test_every_service_account_gets_every_root() -> None:
    lines = acl_lines(acl_text(services=("fleet", "ingest")))
    roots = ["topic readwrite aed/#", "topic readwrite responders/#", "topic readwrite regions/#"]
    assert lines[:8] == ["user fleet", *roots, "user ingest", *roots]


def test_no_pattern_lets_a_device_touch_another_devices_topics() -> None:
    for line in acl_lines(acl_text()):
        if line.startswith("pattern ") and line not in NEWS_RULES:
            _, access, topic = line.split()
            assert access in ("read", "write")
            assert "%u" in topic and "#" not in topic and "+" not in topic


def test_region_news_is_the_one_shared_topic_and_only_readable() -> None:
    shared = [line for line in acl_lines(acl_text()) if line.startswith("pattern ")
              and "%u" not in line]
    assert shared == ["pattern read regions/+/news"]


def test_the_topic_roots_are_configurable() -> None:
    text = acl_text(topic_root="fleet-a/aed", responder_root="fleet-a/resp")
    assert "pattern write fleet-a/aed/%u/telemetry" in text.splitlines()
    assert "pattern read fleet-a/resp/%u/alert" in text.splitlines()
    assert "topic readwrite fleet-a/aed/#" in text.splitlines()


# --- written configuration ----------------------------------------------------------------------

def test_write_broker_config_keeps_existing_passwords_and_invents_new_ones(tmp_path: Path) -> None:
    folder = tmp_path / "broker"
    credentials = write_broker_config(folder, ["cab-1", "cab-2"], ["fleet"],
                                      existing={"cab-1": "kept-password"})
    by_user = {c.user: c.password for c in credentials}
    assert list(by_user) == ["fleet", "cab-1", "cab-2"]
    assert by_user["cab-1"] == "kept-password"
    assert len(by_user["cab-2"]) >= 20 and by_user["cab-2"] != by_user["fleet"]
    assert read_credentials(folder) == by_user


def test_rewriting_from_the_credentials_file_keeps_every_password(tmp_path: Path) -> None:
    first = write_broker_config(tmp_path, ["cab-1"], ["fleet"])
    second = write_broker_config(tmp_path, ["cab-1", "cab-9"], ["fleet"],
                                 existing=read_credentials(tmp_path))
    assert second[:2] == first
    assert second[2].user == "cab-9"


def test_the_password_file_holds_a_verifiable_hash_per_user(tmp_path: Path) -> None:
    credentials = write_broker_config(tmp_path, ["cab-1", "cab-2"], ["fleet"])
    lines = (tmp_path / "passwords").read_text(encoding="utf-8").splitlines()
    hashes = dict(line.split(":", 1) for line in lines)
    assert list(hashes) == ["fleet", "cab-1", "cab-2"]
    for credential in credentials:
        assert verify(credential.password, hashes[credential.user])


@pytest.mark.parametrize("name", ["passwords", "credentials.csv"])
def test_secret_files_are_readable_by_their_owner_only(tmp_path: Path, name: str) -> None:
    write_broker_config(tmp_path, ["cab-1"], ["fleet"])
    assert mode(tmp_path / name) == 0o600


@pytest.mark.parametrize("name", ["passwords", "credentials.csv"])
def test_secret_files_are_made_private_again_when_rewritten(tmp_path: Path, name: str) -> None:
    write_broker_config(tmp_path, ["cab-1"], ["fleet"])
    (tmp_path / name).chmod(0o644)
    write_broker_config(tmp_path, ["cab-1"], ["fleet"], existing=read_credentials(tmp_path))
    assert mode(tmp_path / name) == 0o600


def test_the_acl_and_conf_files_point_mosquitto_at_the_written_files(tmp_path: Path) -> None:
    write_broker_config(tmp_path, ["cab-1"], ["fleet"], port=18830)
    assert (tmp_path / "acl").read_text(encoding="utf-8") == acl_text(services=("fleet",))
    conf = (tmp_path / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    assert "listener 18830 127.0.0.1" in conf
    assert "allow_anonymous false" in conf
    assert f"password_file {tmp_path.resolve() / 'passwords'}" in conf
    assert f"acl_file {tmp_path.resolve() / 'acl'}" in conf


@pytest.mark.parametrize(("run_as_root", "persistence"), [(False, True), (True, False)])
def test_the_conf_switches_root_and_persistence(run_as_root: bool, persistence: bool) -> None:
    conf = mosquitto_conf(Path("/srv/broker"), 1883, persistence=persistence,
                          run_as_root=run_as_root).splitlines()
    assert ("user root" in conf) is run_as_root
    assert ("persistence true" in conf) is persistence


def test_a_broker_session_nobody_resumes_is_dropped_after_30_days() -> None:
    conf = mosquitto_conf(Path("/srv/broker"), 1883).splitlines()
    assert "persistent_client_expiration 30d" in conf


def test_reading_credentials_from_a_folder_without_them_gives_nothing(tmp_path: Path) -> None:
    assert read_credentials(tmp_path) == {}

"""What ``pvlog/session/set`` accepts, and the reply to what it does not."""

from __future__ import annotations

import json

import pytest

from daemon.sessions.control import Command, CommandError, SessionControl, parse_command


def test_start_with_metadata() -> None:
    cmd = parse_command(
        b'{"action": "start", "name": "run42", "tags": {"operator": "alice", "lot": "L7"},'
        b' "request_id": "r1"}'
    )
    assert cmd == Command("start", "run42", {"operator": "alice", "lot": "L7"}, "r1")


def test_stop() -> None:
    assert parse_command(b'{"action": "stop"}') == Command("stop", "", {}, None)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"action": "pause"}', "action must be"),
        (b'{"action": "start"}', "name"),
        (b'{"action": "start", "name": "a b"}', "name"),
        (b'{"action": "start", "name": "x", "tags": {"session": "y"}}', "set by pvlog"),
        (b'{"action": "start", "name": "x", "tags": {"host": "y"}}', "set by pvlog"),
        (b'{"action": "start", "name": "x", "tags": {"op": 5}}', "non-empty string"),
        (b'{"action": "start", "name": "x", "tags": {"1op": "a"}}', "a letter"),
        (b'{"action": "start", "name": "x", "colour": "red"}', "unknown key"),
        (b'{"action": "stop", "name": "x"}', "takes no name"),
        (b'{"action": "stop", "request_id": 7}', "request_id"),
        (b'{"action": "stop", "by": "alice"}', "by: an object"),
        (b'{"action": "stop", "by": {"role": "admin"}}', "by: an object"),
        (b'{"action": "stop", "by": {"os_user": ""}}', "by.os_user"),
    ],
)
def test_malformed_commands_say_why(payload: bytes, why: str) -> None:
    with pytest.raises(CommandError, match=why):
        parse_command(payload)


def test_every_command_gets_a_reply_and_a_rejection_keeps_its_request_id() -> None:
    done: list[Command] = []

    def handler(cmd: Command) -> str:
        if cmd.action == "stop":
            raise CommandError("nothing to stop")
        done.append(cmd)
        return cmd.name

    control = SessionControl("mqtt://127.0.0.1:1", "pvlog", "bench-pc", handler)
    ok = control.handle(b'{"action": "start", "name": "s1", "request_id": "a"}')
    assert ok == {"ok": True, "host": "bench-pc", "session": "s1", "request_id": "a"}
    refused = control.handle(b'{"action": "stop", "request_id": "b"}')
    assert refused["ok"] is False
    assert (refused["error"], refused["request_id"]) == ("nothing to stop", "b")
    bad = control.handle(b'{"action": "jump", "request_id": "c"}')
    assert (bad["ok"], bad["request_id"]) == (False, "c")
    assert json.dumps(bad)  # a reply is always publishable
    assert (control.commands, control.rejected) == (3, 2)
    assert [c.name for c in done] == ["s1"]
    assert done[0].by == "mqtt (who not said)", "the audit trail says the sender said nothing"


def test_who_sent_a_command_is_kept_for_the_audit_trail() -> None:
    done: list[Command] = []
    control = SessionControl(
        "mqtt://127.0.0.1:1", "pvlog", "bench-pc", lambda c: done.append(c) or "s"
    )
    by = {"mqtt_user": "alice", "os_user": "ajones", "host": "lab-3", "client": "pvlog-cli-1"}
    control.handle(json.dumps({"action": "start", "name": "s", "by": by}).encode())
    assert done[0].by == "mqtt (mqtt user alice, os user ajones on lab-3, client pvlog-cli-1)"


def start(tags: dict[str, str]) -> bytes:
    return json.dumps({"action": "start", "name": "L7-b01", "tags": tags}).encode()


@pytest.mark.parametrize(
    ("tags", "said"),
    [
        ({"test": "brust"}, "tag test='brust': must be burst, compliance or fatigue"),
        ({"rbp_atm": "fourteen"}, "tag rbp_atm='fourteen': must be a number above 0 and at "
                                  "most 100 atm"),
        ({"rbp_atm": "inf"}, "tag rbp_atm='inf': must be a number above 0 and at most 100 atm"),
        ({"cycles": "2.5"}, "tag cycles='2.5': must be a whole number above 0 and at most "
                            "10000000"),
        ({"rpb_atm": "14"}, "tag 'rpb_atm': not a tag pvlog reads; did you mean 'rbp_atm'?"),
        ({"lot": "L7", "specimen": " "}, "tag specimen=' ': must not be blank"),
    ],
)  # fmt: skip
def test_a_tag_a_lot_report_could_not_use_is_refused_saying_which(
    tags: dict[str, str], said: str
) -> None:
    with pytest.raises(CommandError) as err:
        parse_command(start(tags))
    assert str(err.value) == said


def test_the_refusal_goes_back_on_the_reply_topic_and_nothing_starts() -> None:
    done: list[Command] = []
    control = SessionControl(
        "mqtt://127.0.0.1:1", "pvlog", "bench-pc", lambda c: done.append(c) or c.name
    )
    payload = json.dumps({"action": "start", "name": "L7-b01", "request_id": "r9",
                          "tags": {"lot": "L7", "test": "brust"}}).encode()  # fmt: skip
    assert control.handle(payload) == {
        "ok": False,
        "host": "bench-pc",
        "error": "tag test='brust': must be burst, compliance or fatigue",
        "request_id": "r9",
    }
    assert done == []


def test_a_lot_s_tags_and_free_tags_are_taken() -> None:
    tags = {"lot": "L7", "specimen": "b01", "test": "fatigue", "fatigue_atm": "12",
            "cycles": "1000", "operator": "alice", "bench": "3"}  # fmt: skip
    assert parse_command(start(tags)).tags == tags

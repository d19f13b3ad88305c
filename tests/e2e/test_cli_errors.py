"""Every verb with bad arguments, and interrupted: one line naming what, a non-zero
exit, never a traceback (pvlog as a user runs it: a process, its stderr)."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.helpers import REPO, SimProcess, pvlog_cmd
from tests.support.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.e2e

CONFIG = """# a bench's config
[influx]
url = "http://127.0.0.1:9"
database = "x"
[outbox]
path = "{tmp}/outbox.sqlite"
[[device]]
name = "bench1"
driver = "pvs"
port = "{tmp}/nothing"
"""


def pvlog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=False, env={**os.environ, **(env or {})})  # fmt: skip


def said(res: subprocess.CompletedProcess[str]) -> str:
    """The one thing said: no traceback, and the last line names it."""
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines, res
    return lines[-1]


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    text = CONFIG.format(tmp=tmp_path)
    (tmp_path / "cp1252.toml").write_bytes(
        text.replace("# a bench's", "# 37 \xb0C,").encode("cp1252")
    )
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    return tmp_path


def test_a_config_in_another_encoding_is_named_and_a_bom_is_read(configs: Path) -> None:
    res = pvlog("run", "-c", str(configs / "cp1252.toml"))
    assert res.returncode == 2
    assert said(res) == (
        f"pvlog: config error: {configs / 'cp1252.toml'}: line 1: byte 0xb0 is "
        "not UTF-8 (saved as Windows-1252 or Latin-1?): save the file as UTF-8"
    )
    ok = pvlog("check-config", "-c", str(configs / "bom.toml"))
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    ("args", "rc", "named"),
    [
        (["report", "x", "--plot", "/nonexistent/dir/rep.png"], 2, "--plot /nonexistent/d"),
        (["recording", "export", "x", "-o", "/nonexistent/dir/x.csv"], 2, "-o /nonexistent/d"),
        (["simulate", "pvs", "--balloon", "abc"], 2, "--balloon 'abc'"),
        (["simulate", "pvs", "--link", "/nonexistent/dir/p0", "--no-wait"], 1, "--link /nonex"),
        (["simulate", "pvs", "--tcp", "notahost.invalid:1", "--no-wait"], 1, "--tcp notahost"),
        (["simulate", "pvs", "--truth", "/nonexistent/dir/t.jsonl", "--no-wait"], 1, "--truth"),
    ],
)  # fmt: skip
def test_a_bad_path_or_argument_is_one_line(args: list[str], rc: int, named: str) -> None:
    res = pvlog(*args)
    assert res.returncode == rc, res.stderr
    assert named in said(res)


MISSING = "/nonexistent/x"


@pytest.mark.parametrize(
    ("args", "rc"),
    [
        (["run", "-c", f"{MISSING}.toml"], 2),
        (["record", "-c", f"{MISSING}.toml"], 2),
        (["check-config", "-c", f"{MISSING}.toml"], 2),
        (["session", "start", "--name", "s", "-c", f"{MISSING}.toml"], 2),
        (["watch", "-c", f"{MISSING}.toml", "--seconds", "1"], 2),
        (["audit", "show", "-c", f"{MISSING}.toml"], 2),
        (["keygen", f"{MISSING}/k"], 2),
        (["replay", f"{MISSING}.mcap"], 1),
        (["recording", "info", f"{MISSING}.mcap"], 1),
        (["recording", "export", f"{MISSING}.mcap"], 1),
        (["recording", "verify", MISSING], 1),
        (["import", f"{MISSING}.mcap", "--session", "s", "-c", "config/demo.toml"], 1),
        (["report", f"{MISSING}.mcap"], 1),
        (["audit", "show", f"{MISSING}.jsonl"], 1),
        (["audit", "verify", f"{MISSING}.jsonl"], 1),
        (["sign", f"{MISSING}.pdf", "--meaning", "reviewed", "--signer", "A", "--key", "k"], 1),
        (["verify", f"{MISSING}.pdf"], 1),
    ],
)  # fmt: skip
def test_every_verb_names_a_missing_path(args: list[str], rc: int) -> None:
    """A configuration or a file to write that cannot be: 2; a file to read that is not
    there: 1, as for one that is not whole. Always one line naming it."""
    res = pvlog(*args)
    assert res.returncode == rc, res.stderr
    assert MISSING in said(res)


def test_the_demo_without_influxdb_says_so(tmp_path: Path) -> None:
    res = pvlog("demo", "--seconds", "1", env={"PVLOG_INFLUXD": str(tmp_path / "influxd")})
    assert res.returncode == 1
    assert said(res).startswith("pvlog demo: influxd not found")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _in_main(proc: subprocess.Popen[str]) -> None:
    """Wait until pvlog's ``main`` runs: it has loaded pydantic's compiled core (the first
    thing it imports). Before that the interpreter is still starting, which no Python
    program can make a Ctrl-C one line in (on a loaded machine that takes a while)."""
    deadline = time.monotonic() + 30
    maps = Path(f"/proc/{proc.pid}/maps")
    while time.monotonic() < deadline and proc.poll() is None:
        if "pydantic_core" in maps.read_text():
            return
        time.sleep(0.005)


def interrupted(
    args: list[str],
    after_s: float,
    env: dict[str, str] | None = None,
    *,
    group: bool = False,
    when: Callable[[], bool] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``after_s`` into pvlog's ``main`` (and once ``when`` holds), a Ctrl-C (``group``: to
    pvlog and the processes it started, as a terminal sends it to its foreground job)."""
    # As a shell starts it: SIGINT at its default (a pytest-xdist worker ignores it, and
    # a child inherits that, so Python would never see the Ctrl-C).
    proc = subprocess.Popen(pvlog_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, preexec_fn=_default_sigint,  # noqa: PLW1509
                            env={**os.environ, **(env or {})}, start_new_session=group)  # fmt: skip
    _in_main(proc)
    if when is not None:
        deadline = time.monotonic() + 60
        while not when() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
    time.sleep(after_s)
    if group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # it ran on: never left behind to read other ports
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"pvlog {' '.join(args)} ran on after Ctrl-C: {err[-2000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_ctrl_c_at_any_moment_is_one_line_and_130(configs: Path, tmp_path: Path) -> None:
    # A device that is there and says nothing (a polled gauge nobody asks): the probe
    # waits on it, and the daemon reads it.
    quiet = SimProcess(tmp_path, "quiet0", "--poll", model="gauge")
    try:
        cfg = tmp_path / "quiet.toml"
        text = CONFIG.format(tmp=tmp_path).replace(f"{tmp_path}/nothing", str(quiet.link))
        cfg.write_text(text.replace("[outbox]\n", "[outbox]\ndrain_timeout_s = 1\n"))
        res = interrupted(["check-config", "-c", str(cfg), "--probe", "--probe-seconds", "30"],
                          2)  # fmt: skip
        assert (res.returncode, said(res)) == (130, "pvlog check-config: interrupted")
        for after in (0.0, 0.3, 0.6, 1.5):  # before the daemon's own handler is in, and after
            res = interrupted(["run", "-c", str(cfg)], after)
            # 0: the daemon's own orderly stop; 130 (or -2, the signal itself, as a shell
            # shows it: 130) before it was in place
            assert res.returncode in (0, 130, -2), res.stderr
            assert "Traceback" not in res.stderr
    finally:
        quiet.kill()
    with PrivateMosquitto(tmp_path / "mq") as broker:  # nobody answers: it waits
        res = interrupted(["session", "start", "--name", "s1", "--broker", broker.url,
                           "--timeout", "20"], 2)  # fmt: skip
    # One line; 130, or the signal itself (-2) when the Ctrl-C lands as the interpreter
    # ends, which a shell shows as 130 all the same.
    assert res.returncode in (130, -2) and said(res) == "pvlog session: interrupted", res


def test_ctrl_c_in_an_export_names_what_it_left_incomplete(tmp_path: Path) -> None:
    """The export's reader stalls (a pipe nobody empties), the user presses Ctrl-C: the
    half-written output is named, not left to be taken for whole."""
    from tests.integration.test_recording_cli import write_recording

    rec = tmp_path / "r.mcap"
    write_recording(rec, reads=500)  # 5000 samples: more than a pipe holds
    out = tmp_path / "out.csv"
    os.mkfifo(out)
    reader = os.open(out, os.O_RDONLY | os.O_NONBLOCK)  # there, and never reads

    def stalled() -> bool:  # the pipe full (64 KiB; short of it by less than a row)
        waiting = fcntl.ioctl(reader, termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", waiting)[0]) > 60_000

    try:
        res = interrupted(["recording", "export", str(rec), "-o", str(out)], 0.2, when=stalled)
    finally:
        os.close(reader)
    assert (res.returncode, said(res)) == (
        130, f"pvlog recording export: interrupted: {out} is incomplete"
    )  # fmt: skip


def test_ctrl_c_stops_a_replay_in_order(tmp_path: Path) -> None:
    """A verb that serves until stopped (run, replay, simulate, watch) takes Ctrl-C as its
    stop: it ends in order and says what it did."""
    from tests.integration.test_recording_cli import write_recording

    rec = tmp_path / "r.mcap"
    write_recording(rec)
    link = tmp_path / "p0"  # made once the replay serves (its Ctrl-C handler in place)
    res = interrupted(["replay", str(rec), "--link", str(link)], 0.2, when=link.is_symlink)
    assert res.returncode == 0, res.stderr
    assert said(res).startswith("replayed 0 chunks")


def test_ctrl_c_in_the_demo_leaves_nothing_running_or_behind(tmp_path: Path) -> None:
    """Interrupted while its InfluxDB, simulator and daemon run: 130, one line, and its
    processes and temporary directory are gone."""
    for group in (False, True):  # pvlog alone, and its whole job as a terminal's Ctrl-C
        res = interrupted(["demo", "--seconds", "30"], 4.0, {"TMPDIR": str(tmp_path)}, group=group)
        assert (res.returncode, said(res)) == (130, "pvlog demo: interrupted")
        gone(tmp_path)


def gone(tmp_path: Path) -> None:
    """Nothing of the demo left: its directory nor its processes."""
    assert list(tmp_path.iterdir()) == []
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(tmp_path).encode() in cmdline.read_bytes():
                left.append(cmdline.parent.name)
        except OSError:  # ended meanwhile
            pass
    assert left == [], "the demo's processes outlived it"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["import", "x", "--session", "", "-c", "c.toml"], "--session: '': 1-100 characters"),
        (["import", "x", "--session", "a b", "-c", "c.toml"], "--session: 'a b': 1-100"),
        (["session", "start", "--name", "a/b"], "--name: 'a/b': 1-100 characters"),
        (["session", "start", "--name", "s", "--tag", "lot"], "--tag: 'lot': use KEY=VALUE"),
        (["session", "start", "--name", "s", "--tag", "rpb_atm=14"], "--tag: tag 'rpb_atm': no"),
        (["session", "start", "--name", "s", "--tag", "cycles=1.5"], "--tag: tag cycles='1.5'"),
        (["recording", "export", "x", "--format", "lp", "--table", "events"], "--table events"),
        (["simulate", "gauge", "--unit", "KPA"], "unrecognized arguments: --unit KPA"),
        (["simulate", "gauge", "--block", "5"], "unrecognized arguments: --block 5"),
        (["simulate", "pvs", "--rbp", "-1"], "--rbp: -1: must be more than 0"),
        (["simulate", "pvs", "--hold", "-1"], "--hold: -1: must be more than 0"),
        (["report", "x", "--rated-burst-atm", "-1"], "--rated-burst-atm: -1: must be more"),
        (["watch", "--broker", "http://127.0.0.1:1883", "--seconds", "1"], "--broker http://"),
    ],
)
def test_input_that_cannot_be_right_is_refused(args: list[str], named: str) -> None:
    res = pvlog(*args)
    assert res.returncode == 2, res
    assert named in said(res)


def test_a_tag_a_lot_report_could_not_use_is_refused_before_connecting() -> None:
    """Nothing listens on port 1: had it tried to send, it would say so and exit 1."""
    res = pvlog("session", "start", "--name", "L7-b01", "--tag", "lot=L7", "--tag",
                "test=brust", "--broker", "mqtt://127.0.0.1:1")  # fmt: skip
    assert res.returncode == 2, res
    assert said(res) == (
        "pvlog session start: error: argument --tag: tag test='brust': must be burst, "
        "compliance or fatigue"
    )
    assert "MQTT" not in res.stderr and res.stdout == ""


def test_watch_needs_an_mqtt_table(configs: Path) -> None:
    res = pvlog("watch", "-c", str(configs / "bom.toml"), "--seconds", "1")
    assert res.returncode == 2 and said(res).endswith("mqtt: this command needs an [mqtt] table")


VERBS = ["run", "record", "check-config", "session", "watch", "ports", "replay", "recording",
         "import", "report", "demo", "audit", "keygen", "sign", "verify", "example-config",
         "deploy", "completion", "manpage"]  # fmt: skip


@pytest.mark.parametrize("flag", ["-v", "-q"])
def test_every_verb_takes_v_and_q(flag: str) -> None:
    for verb in VERBS:
        res = pvlog(verb, flag, "--help")
        assert res.returncode == 0 and "usage:" in res.stdout, (verb, res.stderr)
    res = pvlog("simulate", flag, "pvs", flag, "--help")
    assert res.returncode == 0 and "usage: pvlog simulate pvs" in res.stdout, res.stderr
    gauge = pvlog("simulate", "gauge", "--help").stdout  # each simulator's own options
    assert "--poll" in gauge and "--block" not in gauge and "--unit " not in gauge


def complete(script: str, line: str) -> list[str]:
    """What bash completes ``line`` to with ``script`` loaded (as a shell's Tab asks)."""
    words = line.split(" ")
    asked = " ".join(repr(w) for w in words)
    program = (f"{script}\nCOMP_WORDS=({asked})\nCOMP_CWORD={len(words) - 1}\n_pvlog\n"
               "printf '%s\\n' \"${COMPREPLY[@]}\"\n")  # fmt: skip
    res = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return res.stdout.split()


def test_shell_completion_offers_the_verbs_and_each_verbs_options() -> None:
    script = pvlog("completion", "bash").stdout
    assert complete(script, "pvlog re") == ["record", "recording", "replay", "report"]
    assert complete(script, "pvlog check-config --pr") == ["--probe", "--probe-seconds"]
    assert complete(script, "pvlog simulate m") == ["micrometer", "modbus"]
    assert complete(script, "pvlog recording ")[:3] == ["info", "export", "verify"]
    # an action's own options, from the one parser tree
    assert complete(script, "pvlog recording export --de") == ["--delimiter", "--device"]
    assert complete(script, "pvlog simulate gauge --po") == ["--poll"]
    assert complete(script, "pvlog simulate pvs --po") == []  # the gauge's, not the PVS's
    assert complete(script, "pvlog session start --na") == ["--name"]
    zsh = pvlog("completion", "zsh").stdout
    assert zsh.startswith("autoload -U +X bashcompinit && bashcompinit\n")


def test_a_missing_path_is_said_alike_by_info_and_verify(tmp_path: Path) -> None:
    for verb in ("info", "verify"):
        res = pvlog("recording", verb, str(tmp_path / "missing"))
        assert res.returncode == 1 and said(res).endswith("missing: no such file or directory")
    a_file = tmp_path / "x.mcap"
    a_file.write_bytes(b"")
    res = pvlog("recording", "verify", str(a_file))
    assert res.returncode == 1 and "not a directory" in said(res)


def test_a_replay_of_two_devices_is_refused_naming_both(tmp_path: Path) -> None:
    from daemon.pipeline import Chunk, Samples
    from daemon.recordings.writer import DeviceRecording
    from daemon.sessions.state import SessionState

    for device in ("bench1", "bench2"):  # one session's directory, two devices in it
        rec = DeviceRecording(tmp_path, device, SessionState("s1"), metadata={},
                              max_file_bytes=2**20)  # fmt: skip
        rec.take(Chunk(b"$PVS,1\r\n", 1_000, Samples(), [], []))
        rec.close()
    res = pvlog("replay", str(tmp_path / "s1"), "--no-wait")
    assert res.returncode == 1
    assert said(res) == ("pvlog replay: the recordings are of 2 devices (bench1, bench2): "
                         "a replay serves one; give one device's files")  # fmt: skip

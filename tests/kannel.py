"""Real Kannel for the tests: bearerbox + smsbox from the Debian packages, configured from
deploy/kannel/kannel.conf.template, and a phone speaking the fakesmsc line protocol to
Kannel's `fake` SMSC (what /usr/lib/kannel/test/fakesmsc does, but scriptable).

Line protocol: "<from> <to> <type> <data>"; types text (plain), ucs-2 / data (url-encoded
bytes), udh ("udh <udh> <type> <data>", concatenated parts).
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from bot.sms.kannel_conf import KannelPorts, render

SHORT_CODE = "1300"


def kannel_binaries() -> tuple[str, str] | None:
    bearerbox = shutil.which("bearerbox") or "/usr/sbin/bearerbox"
    smsbox = shutil.which("smsbox") or "/usr/sbin/smsbox"
    return (bearerbox, smsbox) if Path(bearerbox).exists() and Path(smsbox).exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {port}")


@dataclass
class Kannel:
    workdir: Path
    gateway_port: int
    mo_key: str = "mo-key-for-tests"
    username: str = "safepassage"
    password: str = "sendsms-password-for-tests"  # noqa: S105 - test value
    ports: KannelPorts = field(default_factory=lambda: KannelPorts(free_port(), free_port(), free_port(), free_port()))
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sendsms_port}/cgi-bin/sendsms"

    def start(self) -> None:
        binaries = kannel_binaries()
        if binaries is None:
            raise RuntimeError("Kannel is not installed: apt-get install kannel kannel-extras")
        conf = self.workdir / "kannel.conf"
        conf.write_text(
            render(
                gateway_url=f"http://127.0.0.1:{self.gateway_port}",
                mo_key=self.mo_key,
                username=self.username,
                password=self.password,
                admin_password="admin-password-for-tests",  # noqa: S106 - test value
                log_dir=self.workdir,
                store_dir=self.workdir,
                ports=self.ports,
            )
        )
        bearerbox, smsbox = binaries
        for binary, port in ((bearerbox, self.ports.smsbox_port), (smsbox, self.ports.sendsms_port)):
            with (self.workdir / f"{Path(binary).name}.out").open("ab") as sink:
                self.processes.append(subprocess.Popen([binary, str(conf)], stdout=sink, stderr=subprocess.STDOUT))
            wait_port(port)
        wait_port(self.ports.fake_port)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


@dataclass(frozen=True)
class Received:
    sender: str
    receiver: str
    text: str
    parts: int
    coding: str  # "text" (GSM/7-bit) or "ucs-2"


class Phone:
    """The handset side of the fake SMSC: sends MO lines, collects (reassembled) MT."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.inbox: queue.Queue[Received] = queue.Queue()
        self._parts: dict[tuple[str, int], dict[int, bytes]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def send(self, number: str, text: str) -> None:
        try:
            text.encode("ascii")
            line = f"{number} {SHORT_CODE} text {text}\n"
        except UnicodeEncodeError:
            line = f"{number} {SHORT_CODE} ucs2 {urllib.parse.quote(text.encode('utf-16-be'))}\n"
        self.sock.sendall(line.encode("ascii"))

    def receive(self, timeout: float = 60.0) -> Received:
        return self.inbox.get(timeout=timeout)

    def receive_for(self, number: str, timeout: float = 60.0) -> Received:
        deadline = time.monotonic() + timeout
        while True:
            item = self.inbox.get(timeout=max(deadline - time.monotonic(), 0.01))
            if item.receiver == number:
                return item

    def nothing_for(self, number: str, seconds: float) -> bool:
        try:
            self.receive_for(number, seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.sock.close()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._line(line.decode("latin-1"))

    def _line(self, line: str) -> None:
        sender, receiver, kind, rest = line.split(" ", 3)
        if kind == "text":
            self.inbox.put(Received(sender, receiver, rest.encode("latin-1").decode("utf-8", "replace"), 1, "text"))
            return
        if kind in ("ucs-2", "ucs2", "data"):
            self.inbox.put(Received(sender, receiver, _decode(rest, kind), 1, "ucs-2" if kind != "data" else "data"))
            return
        if kind == "udh":
            udh_raw, inner_kind, payload = rest.split(" ", 2)
            udh = urllib.parse.unquote_to_bytes(udh_raw)
            # concatenation IE: 00 03 ref total seq (8-bit ref) or 08 04 ref ref total seq
            if udh[1] == 0x00:
                ref, total, seq = udh[3], udh[4], udh[5]
            else:
                ref, total, seq = udh[3] << 8 | udh[4], udh[5], udh[6]
            data = payload.encode("latin-1") if inner_kind == "text" else _unquote(payload)
            parts = self._parts.setdefault((receiver, ref), {})
            parts[seq] = data
            if len(parts) == total:
                del self._parts[(receiver, ref)]
                whole = b"".join(parts[i] for i in range(1, total + 1))
                if inner_kind == "text" or _seven_bit(whole):
                    text, coding = whole.decode("utf-8", "replace"), "text"
                else:
                    text, coding = whole.decode("utf-16-be", "replace"), "ucs-2"
                self.inbox.put(Received(sender, receiver, text, total, coding))


def _unquote(payload: str) -> bytes:
    """Kannel url-encodes a 0x20 byte as "+" (and a real "+" as %2B)."""
    return urllib.parse.unquote_to_bytes(payload.replace("+", " "))


def _seven_bit(data: bytes) -> bool:
    """Parts of a GSM-7 text carry printable ASCII only; UCS-2 parts carry 0x00/0x0E... bytes."""
    return all(32 <= b < 127 or b in (10, 13) for b in data)


def _decode(payload: str, kind: str) -> str:
    data = _unquote(payload)
    if kind == "data" and _seven_bit(data):
        return data.decode("utf-8", "replace")
    return data.decode("utf-16-be", "replace")


def environment_requires_kannel() -> bool:
    """CI sets SP_REQUIRE_KANNEL=1: a missing Kannel then fails instead of skipping."""
    return os.environ.get("SP_REQUIRE_KANNEL") == "1"

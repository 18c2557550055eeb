#!/usr/bin/env python3
"""DL/T 645-2007 meters for kare's peer tests: the PyPI `dlt645` package's meter simulator
(MeterServerService on its RtuServer, unchanged) behind a small RS-485 bus emulator.

    dlt645_meter.py SPEC.json

SPEC is JSON:

    {"meters": [
       {"address": "123456789012",                 # nameplate digits, most significant first
        "variables": {"02010100": 220.1, ...},     # set_02: instantaneous values (DI3 = 02)
        "energy":    {"00010000": 12345.67, ...},  # set_00: energy (DI3 = 00)
        "demand":    {"01010000": [1.2345, "2501021530"]},  # set_01: value, YYMMDDhhmm
        "events":    {"03110000": ["000003"],      # set_03: event records, one string per
                      "03110001": ["250102030405", "250102031005"]}}  # field (YYMMDDhhmmss)
     ]}

Why a bus emulator: the simulator wants a serial device path, and so does kare's poller (it
opens its port with tokio-serial). So this script opens one pseudo-terminal for kare (the bus)
and one per meter, and relays frames between them as an RS-485 bus would: a request reaches the
meter whose address it carries (broadcast 99…99 and wildcard AA…AA reach every meter), and a
request to an address no meter has gets no answer at all. The simulator itself does not behave
like that: it answers a frame for another address with an error reply D1, which on a shared
bus would collide with the right meter's answer.

Prints one JSON object per line on stdout:
    {"ready": true, "port": "/dev/pts/N"}   once every meter listens
    {"ack": ID}                             after each command
    {"event": "time_set", "meter": A, "data": "HEX"}  a broadcast time set reached meter A;
                                            data is the frame's 6 data bytes (offset removed)

Reads one JSON command per line on stdin ("id" is echoed in the ack):
    {"id": 1, "cmd": "mute",   "meter": A}  the meter stops answering (requests dropped)
    {"id": 2, "cmd": "unmute", "meter": A}
    {"id": 3, "cmd": "garble", "meter": A, "mode": "checksum"|"noise"}
        the meter's next reply is damaged: "checksum" flips its checksum byte; "noise" sends
        line noise (with a 68 in it) just before the intact reply
    {"id": 4, "cmd": "set", "meter": A, "kind": "variables"|"energy"|"demand"|"events",
     "di": "02010100", "value": ...}
Exits when stdin closes.

Serial format is 8N1: pseudo-terminals do not implement parity.
"""

import json
import os
import select
import sys
import threading
import tty
from datetime import datetime

from dlt645 import MeterServerService
from dlt645.model.types.dlt645_type import Demand
from dlt645.protocol.protocol import DLT645Protocol

OUT = threading.Lock()


def say(obj):
    with OUT:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def wire_address(nameplate):
    """Nameplate digits (most significant first) to wire order (A0 first)."""
    return bytes.fromhex(nameplate)[::-1]


def raw_pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    return master, slave


class Meter:
    def __init__(self, spec):
        self.nameplate = spec["address"]
        self.address = wire_address(self.nameplate)
        # Our own descriptors stay open so that neither side sees a hang-up.
        self.master, self.slave = raw_pty()
        path = os.ttyname(self.slave)
        self.service = MeterServerService.new_rtu_server(
            port=path, data_bits=8, stop_bits=1, baud_rate=9600, parity="N", timeout=1.0
        )
        self.service.set_address(self.address)
        for di, value in spec.get("variables", {}).items():
            self.set("variables", di, value)
        for di, value in spec.get("energy", {}).items():
            self.set("energy", di, value)
        for di, value in spec.get("demand", {}).items():
            self.set("demand", di, value)
        for di, value in spec.get("events", {}).items():
            self.set("events", di, value)
        original = self.service.set_time

        def set_time(data):
            say({"event": "time_set", "meter": self.nameplate, "data": bytes(data).hex()})
            original(data)

        # The service calls set_time for a broadcast time set; tell the test what arrived.
        self.service.set_time = set_time
        if not self.service.start():
            raise SystemExit(f"meter {self.nameplate}: the simulator could not open {path}")
        self.muted = False
        self.garble = None
        self.out = b""

    def set(self, kind, di, value):
        key = int(di, 16)
        if kind == "variables":
            ok = self.service.set_02(key, float(value))
        elif kind == "energy":
            ok = self.service.set_00(key, float(value))
        elif kind == "demand":
            amount, when = value
            ok = self.service.set_01(key, Demand(float(amount), datetime.strptime(when, "%y%m%d%H%M")))
        elif kind == "events":
            ok = self.service.set_03(key, list(value))
        else:
            raise ValueError(f"unknown kind {kind}")
        if not ok:
            raise ValueError(f"meter {self.nameplate}: the simulator refused {kind} {di} = {value!r}")


def main():
    spec = json.load(open(sys.argv[1]))
    meters = [Meter(m) for m in spec["meters"]]
    bus_master, bus_slave = raw_pty()
    by_master = {m.master: m for m in meters}
    lock = threading.Lock()

    def commands():
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            cmd = json.loads(line)
            meter = next(m for m in meters if m.nameplate == cmd["meter"])
            with lock:
                if cmd["cmd"] == "mute":
                    meter.muted = True
                elif cmd["cmd"] == "unmute":
                    meter.muted = False
                elif cmd["cmd"] == "garble":
                    meter.garble = cmd["mode"]
                elif cmd["cmd"] == "set":
                    meter.set(cmd["kind"], cmd["di"], cmd["value"])
            say({"ack": cmd["id"]})
        os._exit(0)

    threading.Thread(target=commands, daemon=True).start()
    say({"ready": True, "port": os.ttyname(bus_slave)})

    requests = b""
    while True:
        ready, _, _ = select.select([bus_master] + list(by_master), [], [])
        for fd in ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                continue
            if fd == bus_master:
                requests += chunk
                while True:
                    rest, frame = DLT645Protocol.deserialize_with_remaining(requests)
                    raw = requests[: len(requests) - len(rest)]
                    requests = rest
                    if frame is None:
                        break
                    addr = bytes(frame.addr)
                    for m in meters:
                        reaches = addr in (m.address, b"\xaa" * 6, b"\x99" * 6)
                        with lock:
                            muted = m.muted
                        if reaches and not muted:
                            os.write(m.master, raw)
            else:
                meter = by_master[fd]
                meter.out += chunk
                while True:
                    rest, frame = DLT645Protocol.deserialize_with_remaining(meter.out)
                    raw = meter.out[: len(meter.out) - len(rest)]
                    meter.out = rest
                    if frame is None:
                        break
                    with lock:
                        mode, meter.garble = meter.garble, None
                        muted = meter.muted
                    if muted:
                        continue
                    if mode == "checksum":
                        raw = raw[:-2] + bytes([raw[-2] ^ 0x01]) + raw[-1:]
                    elif mode == "noise":
                        raw = b"\x00\x68\x12\xff" + raw
                    os.write(bus_master, raw)


if __name__ == "__main__":
    main()

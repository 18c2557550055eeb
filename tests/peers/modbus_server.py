#!/usr/bin/env python3
"""A Modbus RTU server (slave side) for kare's peer tests: real pymodbus on a serial device path.

    modbus_server.py PORT CONFIG.json

PORT is a serial device path (the tests give the slave side of a pseudo-terminal), or a TCP
endpoint: `tcp:HOST:PORT` serves Modbus TCP (MBAP framing), `rtu-tcp:HOST:PORT` serves RTU
frames (CRC and all) over TCP, as a transparent serial gateway does. Over Modbus TCP a request
for an unknown unit id gets exception 0x0B (gateway target device failed to respond), as a
gateway answers; over RTU framing it gets silence. CONFIG is JSON:

    {"baud": 9600,
     "devices": [
       {"id": 1,
        "input":   [{"address": 0, "values": [17258, 0, ...]}],
        "holding": [{"address": 8192, "values": [...]}]}
     ]}

Addresses are 0-based protocol addresses; values are 16-bit register words (the Rust side encodes
floats and integers per the device profile, so this script knows nothing about types or word
order). Each range is one block; an address outside every block answers with exception 02
(illegal data address), as a real meter does for a register it does not have. A request to a
slave id not in the list gets no reply at all, as on a real RS-485 bus.

Serial format is 8N1: pseudo-terminals do not implement parity, so the tests cannot run 8E1.

Prints "ready" on stdout (flushed) once the port is open and the server listens.
"""

import asyncio
import json
import logging
import sys


def blocks(ranges):
    """(address, words) pairs, sorted, from the JSON ranges."""
    out = []
    for r in ranges:
        words = [int(v) & 0xFFFF for v in r["values"]]
        if words:
            out.append((int(r["address"]), words))
    return sorted(out)


def new_api_context(devices):
    """pymodbus >= 3.10: SimDevice / SimData, one list of blocks per table."""
    from pymodbus.simulator import DataType, SimData, SimDevice

    # Coils and discrete inputs are not used; each table still needs one block.
    never = [SimData(address=0, values=[False], datatype=DataType.BITS)]
    sims = []
    for dev in devices:
        tables = []
        for table in ("holding", "input"):
            bl = [
                SimData(address=a, values=w, datatype=DataType.REGISTERS)
                for a, w in blocks(dev.get(table, []))
            ]
            # An empty table: one register at the top of the space, so that reads elsewhere
            # still answer "illegal address".
            tables.append(bl or [SimData(address=65535, values=[0], datatype=DataType.REGISTERS)])
        sims.append(SimDevice(id=int(dev["id"]), simdata=(never, never, tables[0], tables[1])))
    return sims


def old_api_context(devices):
    """pymodbus 3.6 .. 3.9: ModbusSlaveContext / ModbusServerContext (not exercised by CI, which
    installs the newest 3.x; kept so that an older pinned pymodbus still serves)."""
    from pymodbus.datastore import ModbusServerContext, ModbusSparseDataBlock

    try:
        from pymodbus.datastore import ModbusDeviceContext as Ctx
    except ImportError:
        from pymodbus.datastore import ModbusSlaveContext as Ctx

    contexts = {}
    for dev in devices:
        tables = {}
        for table in ("holding", "input"):
            values = {}
            for a, w in blocks(dev.get(table, [])):
                for i, word in enumerate(w):
                    # Those versions look a request for address A up at A + 1.
                    values[a + i + 1] = word
            tables[table] = ModbusSparseDataBlock(values or {65535: 0})
        contexts[int(dev["id"])] = Ctx(hr=tables["holding"], ir=tables["input"])
    try:
        return ModbusServerContext(devices=contexts, single=False)
    except TypeError:
        return ModbusServerContext(slaves=contexts, single=False)


async def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    port, config_path = sys.argv[1], sys.argv[2]
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)
    logging.basicConfig(level=logging.ERROR)
    from pymodbus import FramerType
    from pymodbus.server import ModbusSerialServer, ModbusTcpServer

    try:
        context = new_api_context(cfg["devices"])
    except ImportError:
        context = old_api_context(cfg["devices"])
    known = {int(d["id"]) for d in cfg["devices"]}

    tcp = None
    for scheme, framer in (("tcp:", FramerType.SOCKET), ("rtu-tcp:", FramerType.RTU)):
        if port.startswith(scheme):
            host, _, number = port[len(scheme):].rpartition(":")
            tcp = (framer, host, int(number))

    def silent_for_unknown_ids(sending, data):
        # A request for an id nobody has must get no reply, as on a real bus. pymodbus 3.16
        # answers exception 04 for it despite ignore_missing_devices (its SimCore looks the id up
        # with a KeyError), so the reply is dropped here, on its way out.
        if sending and data and data[0] not in known:
            return b""
        return data

    def gateway_for_unknown_ids(sending, data):
        # Modbus TCP: the unit id is byte 6 of the MBAP header. pymodbus answers an unknown id
        # with an exception (function | 0x80, code 04); a gateway says 0x0B instead.
        if sending and len(data) == 9 and data[6] not in known and data[7] & 0x80:
            return data[:8] + b"\x0b"
        return data

    if tcp is not None:
        framer, host, number = tcp
        trace = gateway_for_unknown_ids if framer == FramerType.SOCKET else silent_for_unknown_ids
        server = ModbusTcpServer(
            context,
            framer=framer,
            address=(host, number),
            ignore_missing_devices=True,
            trace_packet=trace,
        )
        await server.serve_forever(background=True)
        print("ready", flush=True)
        await server.serving
        return

    kwargs = dict(
        framer=FramerType.RTU,
        port=port,
        baudrate=int(cfg.get("baud", 9600)),
        bytesize=8,
        parity="N",
        stopbits=1,
        ignore_missing_devices=True,
    )
    try:
        server = ModbusSerialServer(context, trace_packet=silent_for_unknown_ids, **kwargs)
    except TypeError:  # a pymodbus without packet tracing honours ignore_missing_devices
        server = ModbusSerialServer(context, **kwargs)
    await server.serve_forever(background=True)
    print("ready", flush=True)
    await server.serving


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

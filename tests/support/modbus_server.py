"""A Modbus RTU instrument for the tests: pymodbus's own server (a third-party
implementation, not ours), RTU frames over TCP, run as a process of its own.

Its pressure changes with time: registers 2-3 hold, as a big-endian float32 in bar,
``RATE_BAR_S * (now - t0)``, computed when each request is answered, so a reading's
true time is known to within the answer's trip back. Register 16 holds 215 (an int16:
21.5 degC at scale 0.1). Registers 0-31 exist; any other address is an exception
(code 2, illegal data address). Requests to another unit id go unanswered, as on a
bus where no such instrument is.

``python -m tests.support.modbus_server PORT``; prints ``ready <t0>`` once listening.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import time

from pymodbus import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

UNIT_ID = 1
RATE_BAR_S = 0.5
TEMPERATURE_REGISTER = 16


def pressure_registers(t0: float) -> list[int]:
    value = RATE_BAR_S * (time.time() - t0)
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


async def main(port: int) -> None:
    t0 = time.time()

    async def action(_function: int, start: int, _address: int, _count: int,
                     registers: list[int], _values: object) -> None:  # fmt: skip
        registers[2 - start : 4 - start] = pressure_registers(t0)

    device = SimDevice(
        id=UNIT_ID,
        simdata=[
            SimData(address=0, count=TEMPERATURE_REGISTER, values=0, datatype=DataType.REGISTERS),
            SimData(address=TEMPERATURE_REGISTER, values=215, datatype=DataType.REGISTERS),
            SimData(address=17, count=15, values=0, datatype=DataType.REGISTERS),
        ],
        action=action,
    )
    server = ModbusTcpServer(
        device,
        framer=FramerType.RTU,
        address=("127.0.0.1", port),
        ignore_missing_devices=True,
    )
    serving = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.2)
    print(f"ready {t0!r}", flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

"""HTTP control server of the simulator (stdlib ``http.server`` in a thread, 127.0.0.1, JSON), so a test in another
process can drive the running simulated vehicle.

- ``GET /state``: physics state, inputs and OBC commands as the SSC sees them.
- ``POST /set``: inputs, e.g. ``{"speed_kmh": 6, "parking_brake": false, "cab_selector": 4, "e_stop": true,
  "hopper_raised": true, "rear_door_closed": false, "sweeper_head_mounted": true, "snow_attachment_mounted": false,
  "engine_running": true, "brake_pedal": false, "chute_angle": 30, "refuse_step": "nozzle" | null,
  "dtcs": [{"spn": 110, "fmi": 0, "occurrence": 1}, ...]}``. Setting ``speed_kmh`` stops the scenario's profile.
- ``POST /fault``: ``{"kind": "corrupt_checksum", "message": "SSC_Suction", "count": 5}`` (``duration``, ``level``).
- ``GET /counters``: frames sent per message, rejects, injected faults (exact counts).
- ``POST /serial/stall``: ``{"seconds": 1.5}``: the serial firmware simulator stops sending and reading for that
  long (a hung firmware); 409 when the simulator runs no serial link.
- ``GET /serial``: the serial firmware simulator's injected faults and link statistics (409 without one).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from vehicle_sim.can_node import SimulatedVehicle
from vehicle_sim.faults import FaultSpecError
from vehicle_sim.physics import ACTUATORS, Dtc

if TYPE_CHECKING:
    from vehicle_sim.firmware_sim import FirmwareSimulator

log = logging.getLogger(__name__)
#: the longest serial stall the control server accepts (a test's typo must not hang the link for an hour)
MAX_STALL_S = 60.0

_BOOL_INPUTS = {
    "parking_brake": "parking_brake",
    "brake_pedal": "brake_pedal",
    "e_stop": "e_stop",
    "hopper_raised": "hopper_raise",
    "rear_door_closed": "rear_door_closed",
    "sweeper_head_mounted": "sweeper_head_mounted",
    "snow_attachment_mounted": "snow_attachment_mounted",
    "engine_running": "engine_running",
}


def apply_settings(vehicle: SimulatedVehicle, body: dict[str, Any]) -> dict[str, Any]:
    """Validate and apply a ``/set`` body; raises ``ValueError`` naming the first bad key."""
    physics = vehicle.physics
    updates: dict[str, Any] = {}
    for key, value in body.items():
        if key in _BOOL_INPUTS:
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be a boolean")
            updates[_BOOL_INPUTS[key]] = value
        elif key == "speed_kmh":
            updates["speed_target_kmh"] = max(0.0, float(value))
        elif key == "cab_selector":
            if int(value) not in range(5):
                raise ValueError("cab_selector must be 0..4 (OFF, TRANSPORT, SWEEPER, SNOW, REMOTE)")
            updates["cab_selector"] = int(value)
        elif key == "chute_angle":
            updates["chute_angle_target"] = max(-125.0, min(125.0, float(value)))
        elif key == "clog":
            updates["clog"] = max(0.0, min(1.0, float(value)))
        elif key == "refuse_step":
            if value is not None and value not in (*ACTUATORS, "hopper"):
                raise ValueError(f"refuse_step must be null or one of {', '.join((*ACTUATORS, 'hopper'))}")
            updates["refuse_step"] = value
        elif key == "dtcs":
            updates["dtcs"] = [Dtc(int(d["spn"]), int(d["fmi"]), int(d.get("occurrence", 1))) for d in value]
        else:
            raise ValueError(f"unknown setting {key!r}")
    if "speed_target_kmh" in updates:
        vehicle.scenario = None  # controlled from now on
    with physics.lock:
        for attr, value in updates.items():
            setattr(physics.inputs, attr, value)
    return updates


def state_of(vehicle: SimulatedVehicle) -> dict[str, Any]:
    physics = vehicle.physics
    with physics.lock:
        return {
            "state": asdict(physics.state),
            "inputs": asdict(physics.inputs),
            "commands": asdict(physics.commands),
            "truth": dict(physics.truth()),
            "scenario": vehicle.scenario.name if vehicle.scenario is not None else "controlled",
        }


class _Handler(BaseHTTPRequestHandler):
    server: ControlServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)

    def _reply(self, status: HTTPStatus, body: Any) -> None:
        payload = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    def _firmware(self) -> FirmwareSimulator | None:
        """The serial firmware simulator, or None after answering 409."""
        firmware = self.server.firmware
        if firmware is None:
            self._reply(HTTPStatus.CONFLICT, {"error": "this simulator runs no serial firmware link (--serial)"})
        return firmware

    def do_GET(self) -> None:
        vehicle = self.server.vehicle
        if self.path == "/state":
            self._reply(HTTPStatus.OK, state_of(vehicle))
        elif self.path == "/counters":
            self._reply(HTTPStatus.OK, vehicle.counters())
        elif self.path == "/serial":
            if (firmware := self._firmware()) is not None:
                self._reply(HTTPStatus.OK, {"injected": firmware.injected(), "stats": firmware.stats()})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        vehicle = self.server.vehicle
        try:
            body = self._body()
            if self.path == "/set":
                self._reply(HTTPStatus.OK, {"applied": apply_settings(vehicle, body)})
            elif self.path == "/fault":
                kind = str(body.pop("kind"))
                vehicle.inject(kind, **body)
                self._reply(HTTPStatus.OK, {"injected": kind})
            elif self.path == "/serial/stall":
                seconds = float(body["seconds"])
                if not 0 < seconds <= MAX_STALL_S:
                    raise ValueError(f"seconds must be in (0, {MAX_STALL_S:g}]")
                if (firmware := self._firmware()) is not None:
                    firmware.stall(seconds)
                    self._reply(HTTPStatus.OK, {"stalled_s": seconds})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
        except (ValueError, KeyError, TypeError, FaultSpecError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})


class ControlServer(ThreadingHTTPServer):
    """``ControlServer(vehicle, port=0, firmware=None).start()``; ``port`` 0 picks a free one (see ``.port``);
    ``firmware``: the serial firmware simulator the ``/serial`` routes drive."""

    daemon_threads = True

    def __init__(self, vehicle: SimulatedVehicle, port: int = 0, host: str = "127.0.0.1",
                 firmware: FirmwareSimulator | None = None) -> None:
        super().__init__((host, port), _Handler)
        self.vehicle = vehicle
        self.firmware = firmware
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ControlServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.name = "sim-control"
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(2.0)

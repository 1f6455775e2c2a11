"""Drive HTTP load with `wrk` (apt-get install wrk) over a rotating list of requests.

wrk is a C load generator: it costs the machine far less CPU than a Python client, so on a
small machine the figures describe the server rather than the client. A generated Lua
script hands each connection the next request of the list (GET paths, or POST bodies), and
`--latency` gives the latency percentiles, which are parsed from wrk's report.

By default each connection sends its next request as soon as the last one is answered (a
closed loop: the figures then describe a saturated server, where latency = connections /
throughput). With `think_ms`, each connection first waits a random think time
(exponential, that mean; wrk's `delay()` hook), so the server sees a set offered rate of
about connections / think time and the latency percentiles describe that load.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

__all__ = ["WrkRequest", "WrkResult", "run_wrk", "wrk_available"]

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


class WrkRequest(NamedTuple):
    method: str  # GET or POST
    path: str
    body: str | None = None  # JSON text for POST


class WrkResult(NamedTuple):
    requests: int
    seconds: float
    requests_per_s: float
    latency_ms: dict[str, float]  # "50%", "75%", "90%", "99%"
    non_2xx: int
    errors: str | None


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua(requests: list[WrkRequest], think_ms: float | None) -> str:
    items = ",\n".join(
        "{{{}, {}, {}}}".format(
            json.dumps(r.method), json.dumps(r.path), json.dumps(r.body) if r.body else "nil"
        )
        for r in requests
    )
    return f"""
local items = {{
{items}
}}
local headers = {{["Content-Type"] = "application/json"}}
local i = math.random(#items)
request = function()
  i = (i % #items) + 1
  local item = items[i]
  if item[3] then
    return wrk.format(item[1], item[2], headers, item[3])
  end
  return wrk.format(item[1], item[2])
end
""" + (
        ""
        if think_ms is None
        else f"""
delay = function()
  return math.floor(-math.log(1 - math.random()) * {think_ms:g} + 0.5)
end
"""
    )


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"cannot read wrk's latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    base_url: str,
    requests: list[WrkRequest],
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    timeout_s: float = 10.0,
    think_ms: float | None = None,
) -> WrkResult:
    """Run wrk for `seconds` with `connections` open connections over `requests` (rotated),
    each connection waiting an exponential think time of mean `think_ms` before each request
    (None: none, a closed loop)."""
    if think_ms is not None and not think_ms > 0:
        raise ValueError(f"think_ms must be > 0, got {think_ms}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(requests, think_ms))
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                f"--timeout={timeout_s:g}s",
                "--latency",
                "-s",
                script.name,
                base_url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        Path(script.name).unlink(missing_ok=True)
    latency = {
        m.group(1): _ms(m.group(2))
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, flags=re.M)
    }
    latency = {f"{k}%": v for k, v in latency.items()}
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if done is None or rate is None:
        raise RuntimeError(f"cannot read wrk's report:\n{out}")
    return WrkResult(
        requests=int(done.group(1)),
        seconds=_ms(done.group(2) + done.group(3)) / 1e3,
        requests_per_s=float(rate.group(1)),
        latency_ms=latency,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(1) if errors else None,
    )

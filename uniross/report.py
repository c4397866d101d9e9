"""Trial report from a CAN recording: time per mode, faults, clog events, key-signal statistics, plots.

Sources (all from the recording, decoded by the batch decoder):
* modes: ``SSC_Status.SscActiveMode`` (what the SSC did) and ``OBC_ModeCommand.RequestedMode`` (what we asked);
  each sample's value holds until the next sample (gaps longer than ``max_gap_s`` are not counted);
* faults: DM1 single-frame DTCs (SPN = ``DTC1_SPN_Low + DTC1_SPN_High << 16``, FMI) and ``SSC_Status.SscFaultCode``
  intervals;
* clog events at CAN rate: suction vacuum above the fan-affinity prediction (``telemetry.diagnostics``
  coefficients: ``p_exp = suction_ref * (n / n_ref)^2``, score ``(p/p_exp - 1) / clog_suction_margin >= 1``,
  fan above ``min_fan_rpm``) for at least the clog fault's ``raise_after_s``. The serial-rate hot-loop diagnostic
  also uses the nozzle dp, which CAN does not carry: this is the suction half of its signature.
* min/mean/max of the key signals.

Output: ``report.md``, ``report.html``, ``report.json`` and ``signals.png`` (matplotlib, Agg) in the output folder.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from cantools.database.can import Database

from telemetry.diagnostics import DiagnosticsConfig
from uniross.export import DecodeStats, collect_columns

FloatArray = npt.NDArray[np.float64]
KEY_SIGNALS = (
    "CCVS1.WheelBasedVehicleSpeed",
    "SSC_Suction.SuctionFanSpeed",
    "SSC_Suction.SuctionPressure",
    "SSC_HopperWater.HopperFillLevel",
    "ET1.EngCoolantTemp",
    "VEP1.BatteryPotential_PowerInput1",
)
MODE_SOURCES = ("SSC_Status.SscActiveMode", "OBC_ModeCommand.RequestedMode")
FAULT_KEYS = ("SSC_Status.SscFaultCode",)
DM1_COLUMNS = ("DTC1_SPN_Low", "DTC1_SPN_High", "DTC1_FMI", "DTC1_OccurrenceCount")


@dataclass
class Interval:
    start: float  # seconds from the start of the recording
    end: float
    value: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class SignalStats:
    unit: str
    samples: int
    minimum: float
    mean: float
    maximum: float


@dataclass
class TrialReport:
    source: str
    start_time: float
    duration_s: float
    frames: int
    rejects: dict[str, int]
    mode_time_s: dict[str, dict[str, float]] = field(default_factory=dict)
    mode_intervals: dict[str, list[Interval]] = field(default_factory=dict)
    dtcs: list[dict[str, Any]] = field(default_factory=list)
    ssc_faults: list[Interval] = field(default_factory=list)
    clog_events: list[Interval] = field(default_factory=list)
    stats: dict[str, SignalStats] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def intervals(t: FloatArray, labels: list[str], end: float, max_gap_s: float) -> list[Interval]:
    """Runs of equal labels; a value holds until the next sample or at most ``max_gap_s``."""
    out: list[Interval] = []
    for i, label in enumerate(labels):
        stop = min(t[i + 1] if i + 1 < len(t) else end, t[i] + max_gap_s)
        if out and out[-1].value == label and abs(out[-1].end - t[i]) < 1e-9:
            out[-1].end = stop
        else:
            out.append(Interval(float(t[i]), float(stop), label))
    return out


def _mode_labels(db: Database, key: str, values: FloatArray) -> list[str]:
    message, signal = key.split(".")
    choices: dict[Any, Any] = dict(db.get_message_by_name(message).get_signal_by_name(signal).choices or {})
    names = {int(k): str(v) for k, v in choices.items()}
    return [names.get(int(v), str(int(v))) if np.isfinite(v) else "NOT_AVAILABLE" for v in values]


def clog_mask(fan_rpm: FloatArray, suction_pa: FloatArray, cfg: DiagnosticsConfig) -> npt.NDArray[np.bool_]:
    """Samples whose suction vacuum exceeds the affinity-law prediction by the clog margin."""
    expected = cfg.suction_ref_pa * (fan_rpm / cfg.n_ref_rpm) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (suction_pa / expected - 1.0) / cfg.clog_suction_margin
    return (fan_rpm >= cfg.min_fan_rpm) & np.isfinite(score) & (score >= cfg.clog_fault.raise_threshold)


Columns = dict[str, tuple[FloatArray, FloatArray]]


def build_report(path: str | Path, db: Database, *, max_gap_s: float = 2.0,
                 diagnostics: DiagnosticsConfig | None = None) -> tuple[TrialReport, Columns]:
    """The report's numbers plus the columns used (for the plots)."""
    cfg = diagnostics or DiagnosticsConfig()
    wanted = {k.split(".")[0] for k in (*KEY_SIGNALS, *MODE_SOURCES, *FAULT_KEYS)} | {"DM1"}
    stats = DecodeStats()
    cols = collect_columns(path, db, wanted, stats=stats)
    stamps = [c["timestamp"] for c in cols.values() if len(c["timestamp"])]
    t0 = min(float(s.min()) for s in stamps) if stamps else 0.0
    t_end = max(float(s.max()) for s in stamps) if stamps else 0.0
    report = TrialReport(str(path), t0, t_end - t0, stats.frames, dict(stats.rejects))

    def column(key: str) -> tuple[FloatArray, FloatArray] | None:
        message, signal = key.split(".")
        if message not in cols or signal not in cols[message]:
            return None
        return cols[message]["timestamp"] - t0, np.asarray(cols[message][signal], dtype=np.float64)

    for key in MODE_SOURCES:
        col = column(key)
        if col is None:
            continue
        runs = intervals(col[0], _mode_labels(db, key, col[1]), t_end - t0, max_gap_s)
        report.mode_intervals[key] = runs
        totals: dict[str, float] = {}
        for run in runs:
            totals[run.value] = totals.get(run.value, 0.0) + run.duration
        report.mode_time_s[key] = {k: round(v, 3) for k, v in totals.items()}

    fault = column("SSC_Status.SscFaultCode")
    if fault is not None:
        labels = [str(int(v)) if np.isfinite(v) else "NA" for v in fault[1]]
        report.ssc_faults = [r for r in intervals(fault[0], labels, t_end - t0, max_gap_s) if r.value not in ("0",)]

    if "DM1" in cols:
        report.dtcs = _dtcs(cols["DM1"], t0)

    fan, suction = column("SSC_Suction.SuctionFanSpeed"), column("SSC_Suction.SuctionPressure")
    if fan is not None and suction is not None:
        mask = clog_mask(fan[1], suction[1], cfg)
        runs = intervals(fan[0], ["clog" if m else "" for m in mask], t_end - t0, max_gap_s)
        report.clog_events = [r for r in runs if r.value and r.duration >= cfg.clog_fault.raise_after_s]

    for key in KEY_SIGNALS:
        col = column(key)
        if col is None:
            continue
        values = col[1][np.isfinite(col[1])]
        message, signal = key.split(".")
        unit = db.get_message_by_name(message).get_signal_by_name(signal).unit or ""
        if len(values):
            report.stats[key] = SignalStats(unit, len(values), float(values.min()), float(values.mean()),
                                            float(values.max()))
    plot_columns = {k: c for k in (*KEY_SIGNALS, MODE_SOURCES[0]) if (c := column(k)) is not None}
    return report, plot_columns


def _dtcs(dm1: dict[str, Any], t0: float) -> list[dict[str, Any]]:
    if not all(c in dm1 for c in DM1_COLUMNS):
        return []
    spn = dm1["DTC1_SPN_Low"].astype(np.float64) + dm1["DTC1_SPN_High"].astype(np.float64) * 65536
    fmi = dm1["DTC1_FMI"].astype(np.float64)
    active = np.isfinite(spn) & np.isfinite(fmi) & (spn > 0)
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for i in np.flatnonzero(active):
        key = (int(spn[i]), int(fmi[i]))
        t = float(dm1["timestamp"][i]) - t0
        entry = found.setdefault(key, {"spn": key[0], "fmi": key[1], "first_s": t, "last_s": t, "frames": 0,
                                       "occurrence_count": 0})
        entry["last_s"] = t
        entry["frames"] += 1
        count = dm1["DTC1_OccurrenceCount"][i]
        if np.isfinite(count):
            entry["occurrence_count"] = max(entry["occurrence_count"], int(count))
    return sorted(found.values(), key=lambda e: e["first_s"])


def plot_signals(columns: Columns, report: TrialReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(columns)
    fig, axes = plt.subplots(len(keys), 1, figsize=(10, 1.8 * max(len(keys), 1)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        t, v = columns[key]
        ax.step(t, v, where="post", linewidth=0.8)
        unit = report.stats[key].unit if key in report.stats else ""
        ax.set_ylabel(f"{key.split('.')[1]}\n[{unit}]" if unit else key.split(".")[1], fontsize=7)
        for event in report.clog_events:
            ax.axvspan(event.start, event.end, color="tab:red", alpha=0.2)
    axes[-1, 0].set_xlabel("time since start of recording [s]")
    fig.suptitle(f"{Path(report.source).name}: key signals (red: clog events)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(report: TrialReport) -> str:
    lines = [f"# Trial report: {Path(report.source).name}", "",
             f"Duration {report.duration_s:.1f} s, {report.frames} frames, rejects: {report.rejects or 'none'}.", ""]
    for key, totals in report.mode_time_s.items():
        lines += [f"## Time per mode ({key})", "", "| mode | seconds | share |", "| --- | ---: | ---: |"]
        total = sum(totals.values()) or 1.0
        lines += [f"| {m} | {s:.1f} | {100 * s / total:.0f} % |" for m, s in sorted(totals.items())]
        lines.append("")
    lines += ["## DM1 trouble codes", ""]
    lines += (["| SPN | FMI | first [s] | last [s] | occurrences |", "| ---: | ---: | ---: | ---: | ---: |"]
              + [f"| {d['spn']} | {d['fmi']} | {d['first_s']:.1f} | {d['last_s']:.1f} | {d['occurrence_count']} |"
                 for d in report.dtcs] if report.dtcs else ["none"])
    lines += ["", "## SSC fault codes", ""]
    lines += ([f"- code {f.value}: {f.start:.1f} s to {f.end:.1f} s ({f.duration:.1f} s)" for f in report.ssc_faults]
              or ["none"])
    lines += ["", "## Clog events (CAN suction vs fan-affinity prediction)", ""]
    lines += ([f"- {e.start:.1f} s to {e.end:.1f} s ({e.duration:.1f} s)" for e in report.clog_events] or ["none"])
    lines += ["", "## Key signals", "", "| signal | unit | min | mean | max |", "| --- | --- | ---: | ---: | ---: |"]
    lines += [f"| {k} | {s.unit} | {s.minimum:.2f} | {s.mean:.2f} | {s.maximum:.2f} |" for k, s in report.stats.items()]
    lines += ["", "![key signals](signals.png)", ""]
    return "\n".join(lines)


def _html(markdown: str) -> str:
    """A minimal rendering of the report's own Markdown (headings, tables, lists, image)."""
    body: list[str] = []
    in_table = False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-: "):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.startswith("!["):
            body.append('<img src="signals.png" alt="key signals">')
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        body.append("</table>")
    style = "body{font-family:sans-serif;max-width:60em}td{border:1px solid #ccc;padding:2px 6px}img{width:100%}"
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head><body>" \
           + "\n".join(body) + "</body></html>\n"


def write_report(path: str | Path, out_dir: str | Path, db: Database, *, plots: bool = True) -> TrialReport:
    """Build the report of ``path`` and write it to ``out_dir`` (module docstring)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report, columns = build_report(path, db)
    if plots and columns:
        plot_signals(columns, report, out / "signals.png")
        report.files.append(str(out / "signals.png"))
    markdown = _markdown(report)
    (out / "report.md").write_text(markdown)
    (out / "report.html").write_text(_html(markdown))
    report.files += [str(out / "report.md"), str(out / "report.html"), str(out / "report.json")]
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report

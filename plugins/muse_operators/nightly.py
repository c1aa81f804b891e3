"""Which OBs of an observing night are ready to reduce, and whether exactly this reduction already ran.

The nightly DAG (``dags/muse_nightly.py``) calls :func:`survey_night` once per observing night; it is pure
domain logic (no Airflow) so it is tested in milliseconds and can be run by hand.

**The observing night** is the UTC interval ``[D 12:00, D+1 12:00)``, named ``D`` (the date of the evening
it starts, as ESO names nights). UTC rather than Chilean local time because every night is then exactly
24 h (Chile's daylight-saving changes make local noon-to-noon 23 or 25 h twice a year, which a cron
schedule handles badly), and 12:00 UTC is 08:00/09:00 at Paranal: after sunrise all year, so a night's
science never straddles two intervals. The afternoon calibrations before the night (from ~17:00 UTC)
fall into it too.

**Ready** means: every exposure its templates announce is there (``TPL.NEXP`` exposures numbered by
``TPL.EXPNO`` per ``TPL.START``), and the reduction plan for the OB alone has no errors (each required
calibration and static table found). Anything else is *incomplete*, with the reasons; it is not an error
of the nightly run. Each run looks back ``lookback_nights`` nights, so an incomplete OB is tried again
when its missing frames arrive.

**Unchanged** means: the OB's *reduction fingerprint* (its raw and static input files' path, size and
mtime; the settings that change products; the esorex image ID and the Python steps' code) is the one of
an earlier reduction. The fingerprint is part of the triggered run's ID (``nightly__<night>__<OB>__<fp>``),
so Airflow itself refuses a second run of an identical reduction, however many nightly runs or backfills
ask for it, and a changed input, config or image makes a new run.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, UTC
from pathlib import Path
from typing import Any

from astropy.time import Time

from .atomic_write import write_text_atomically
from .classify import classify
from .grouping import ObservingBlock, group_science
from .headers import RawFrame
from .run_dir import product_settings
from .step_record import file_identity

NIGHT_START_HOUR_UTC = 12
RUN_ID_PREFIX = "nightly"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:+-]")  # Airflow's run-ID alphabet


def night_of(moment: datetime) -> str:
    """The name (``YYYY-MM-DD``) of the observing night that ``moment`` falls in."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (utc - timedelta(hours=NIGHT_START_HOUR_UTC)).date().isoformat()


def night_of_mjd(mjd: float) -> str:
    return night_of(Time(mjd, format="mjd", scale="utc").to_datetime(timezone=UTC))


def night_start_mjd(night: str) -> float:
    """MJD of 12:00 UTC on the night's date: where the interval begins."""
    return float(Time(f"{date.fromisoformat(night).isoformat()}T{NIGHT_START_HOUR_UTC:02d}:00:00", scale="utc").mjd)


@dataclass
class ObDecision:
    """What the nightly run decided for one OB, and why (the night report holds a list of these)."""

    ob: str
    night: str
    status: str  # ready | incomplete | not-selected
    reasons: list[str] = field(default_factory=list)
    prog_id: str | None = None
    target: str | None = None
    exposures: int = 0
    fingerprint: str | None = None
    run_id: str | None = None
    conf: dict[str, Any] | None = None

    def line(self) -> str:
        why = "; ".join(self.reasons)
        head = f"{self.ob} (night {self.night}, {self.prog_id}, {self.target}): {self.status}"
        return head + (f": {why}" if why else "")


def template_gaps(ob: ObservingBlock, frames: Iterable[RawFrame]) -> list[str]:
    """Exposures the OB's templates announce (TPL.NEXP) but the landing area does not hold yet."""
    keys = {(e.frame.obs_id, e.frame.tpl_start) for e in ob.exposures}
    seen: dict[str, set[int]] = {}
    expected: dict[str, int] = {}
    for frame in frames:
        if (frame.obs_id, frame.tpl_start) not in keys or frame.tpl_start is None:
            continue
        seen.setdefault(frame.tpl_start, set()).add(int(frame.tpl_expno or 0))
        expected[frame.tpl_start] = max(expected.get(frame.tpl_start, 0), int(frame.tpl_nexp or 0))
    gaps = []
    for start, nexp in sorted(expected.items()):
        missing = sorted(set(range(1, nexp + 1)) - seen[start])
        if missing:
            gaps.append(f"template {start}: exposure(s) {', '.join(map(str, missing))} of {nexp} not arrived yet")
    return gaps


def _matches(pattern: str, *values: str | None) -> bool:
    """Shell-style, case-insensitive match of a filter (``60.A-9100*``) against any of the values."""
    return any(v is not None and fnmatch.fnmatchcase(str(v).upper(), pattern.upper()) for v in values)


def reduction_fingerprint(input_paths: Iterable[str], config: Mapping[str, Any], ifus: Sequence[int] | None,
                          code_ids: Sequence[str]) -> str:
    """Same inputs, same product settings, same image and code ⇒ same products: 12 hex digits."""
    payload = {"inputs": [[path, *file_identity(path)] for path in sorted(set(input_paths))],
               "settings": product_settings(config, ifus), "code": list(code_ids)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_id_for(night: str, ob: str, print_: str) -> str:
    return f"{RUN_ID_PREFIX}__{night}__{_UNSAFE.sub('-', ob)}__{print_}"


@dataclass
class NightRequest:
    """One nightly run's inputs (the DAG's Params plus its data interval)."""

    landing_dir: str
    output_dir: str
    night: str
    config: dict[str, Any] = field(default_factory=dict)
    ifus: list[int] | None = None
    lookback_nights: int = 2
    programme: str = ""
    target: str = ""
    run_name: str = ""


def survey_night(request: NightRequest, frames: Sequence[RawFrame], code_ids: Sequence[str]) -> list[ObDecision]:
    """Decide for every OB whose first exposure falls in the night (or the lookback nights before it)."""
    from .config import load_config
    from .planner import plan_reduction

    if request.lookback_nights < 0:
        raise ValueError(f"lookback_nights must be 0 or more, not {request.lookback_nights}")
    first_night = (date.fromisoformat(request.night) - timedelta(days=request.lookback_nights)).isoformat()
    window = (night_start_mjd(first_night), night_start_mjd(request.night) + 1.0)
    science = [f for f in frames if classify(f).tag in {"OBJECT", "SKY"}]
    decisions = []
    for ob in group_science(science):
        if not window[0] <= ob.first_mjd < window[1]:
            continue
        first = ob.exposures[0].frame
        decision = ObDecision(ob.name, night_of_mjd(ob.first_mjd), "ready", prog_id=first.prog_id,
                              target=first.targ_name, exposures=len(ob.exposures))
        decisions.append(decision)
        if request.programme and not _matches(request.programme, first.prog_id):
            decision.status = "not-selected"
            decision.reasons = [f"programme {first.prog_id} is not {request.programme}"]
            continue
        if request.target and not _matches(request.target, first.targ_name, first.obs_name, ob.name):
            decision.status, decision.reasons = "not-selected", [f"target {first.targ_name} is not {request.target}"]
            continue
        decision.reasons = template_gaps(ob, science)
        config = json.loads(json.dumps(request.config))
        config.setdefault("global", {})["OB_list"] = [ob.name]
        config["global"]["dither_multiple_OBs"] = False
        cfg = load_config(config)
        plan = plan_reduction(request.landing_dir, Path(request.output_dir) / (request.run_name or "nightly-survey"),
                              cfg, request.ifus, frames=frames)
        decision.reasons += plan.errors
        if decision.reasons:
            decision.status = "incomplete"
            continue
        inputs = [item.path for step in plan.steps for item in step.inputs if item.path]
        decision.fingerprint = reduction_fingerprint(inputs, dict(cfg), request.ifus, code_ids)
        decision.run_id = run_id_for(decision.night, ob.name, decision.fingerprint)
        decision.conf = {"raw_dir": request.landing_dir, "output_dir": request.output_dir,
                         "run_name": request.run_name, "ifus": request.ifus, "config": config}
    return decisions


def write_report(output_dir: str | Path, night: str, decisions: Sequence[ObDecision]) -> Path:
    """``<output_dir>/nightly/<night>.json``: every OB's decision, replaced atomically on each run."""
    directory = Path(output_dir) / "nightly"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{night}.json"
    written = datetime.now(UTC).isoformat(timespec="seconds")
    write_text_atomically(path, json.dumps({"night": night, "written": written,
                                            "obs": [asdict(d) for d in decisions]}, indent=1, default=str))
    return path

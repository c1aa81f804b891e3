"""Cold and warm scans of a 10,000-file raw archive with the cached header index.

    .venv/bin/python benchmarks/header_index.py [--files 10000] [--cards 1500] [--workdir DIR] [--keep]

Writes header-only raw files (a realistic MUSE primary header: the keywords of
``synthetic.headers.primary_header`` with varied DPR types and dates, padded with ESO INS/DET/TEL/OCS/ADA
cards to ``--cards`` cards, as real MUSE primary headers have 1000-2000), one directory per night. Generation
is not timed. Then times, each with a fresh HeaderIndex (as a new DAG run would make):

  cold:         empty database, files in the page cache (they were just written)
  warm:         unchanged archive, same database (median of 5)
  cold_evicted: empty database after evicting every file from the page cache with posix_fadvise(DONTNEED);
                dropping the whole page cache (/proc/sys/vm/drop_caches) needs root and is not done, and the
                VM host may still cache the disk, so this is a lower bound of a truly cold disk.

Also times astropy ``fits.getheader`` (what headers.scan uses) on a sample, for comparison. Prints the
numbers and writes benchmarks/results/header_index.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import astropy
import numpy as np
from astropy.io import fits

from muse_operators.planner import plan_reduction
from muse_operators.header_index import RACY_NS, HeaderIndex
from muse_operators.synthetic.headers import FrameSpec, primary_header

HERE = Path(__file__).resolve().parent
# (DPR CATG, DPR TYPE, EXPTIME, share of files): a calibration-heavy mix, as in a real MUSE archive
MIX = [("CALIB", "BIAS", 0.0, 0.25), ("CALIB", "DARK", 1800.0, 0.05), ("CALIB", "FLAT,LAMP", 15.0, 0.2),
       ("CALIB", "WAVE", 15.0, 0.15), ("CALIB", "FLAT,LAMP,ILLUM", 10.0, 0.05), ("CALIB", "FLAT,SKY", 30.0, 0.05),
       ("CALIB", "STD", 60.0, 0.05), ("SCIENCE", "OBJECT", 600.0, 0.15), ("SCIENCE", "SKY", 120.0, 0.05)]


def _card(key: str, value: float | int | str, comment: str) -> str:
    """One HIERARCH card image, formatted by hand (astropy Card objects are too slow for 15M cards)."""
    text = f"'{value:<8}'" if isinstance(value, str) else (f"{value:.4f}" if isinstance(value, float) else str(value))
    return f"HIERARCH ESO {key} = {text} / {comment}"[:80].ljust(80)


def extra_cards(rng: np.random.Generator, count: int) -> str:
    """``count`` instrument, detector, telescope and software cards with plausible varying values."""
    cards = []
    groups = [("INS TEMP{} VAL", "[C] temperature", lambda: float(rng.normal(12, 1))),
              ("INS PRES{} VAL", "[mbar] pressure", lambda: float(rng.normal(743, 2))),
              ("INS IFU{} SLIC POS", "slicer position", lambda: int(rng.integers(0, 4096))),
              ("INS LAMP{} ST", "lamp state", lambda: "OFF" if rng.random() < 0.7 else "ON"),
              ("DET CHIP{} TEMP", "[K] chip temperature", lambda: float(rng.normal(163, 0.1))),
              ("DET OUT{} CONAD", "conversion e-/ADU", lambda: float(rng.normal(1.1, 0.01))),
              ("TEL AMBI SENS{} VAL", "ambient sensor", lambda: float(rng.normal(10, 3))),
              ("OCS SEQ{} ID", "sequencer id", lambda: int(rng.integers(1, 10**6))),
              ("ADA SENS{} ANG", "[deg] adapter angle", lambda: float(rng.uniform(-180, 180))),
              ("AOS CFG{} NAME", "AO configuration", lambda: "WFM-AO" if rng.random() < 0.5 else "NOAO")]
    for i in range(count):
        key, comment, value = groups[i % len(groups)]
        cards.append(_card(key.format(i // len(groups) + 1), value(), comment))
    return "".join(cards)


def write_file(args: tuple[Path, int, int, int]) -> None:
    """One header-only raw file: PrimaryHDU(primary_header(spec)) cards plus the extra cards, then END."""
    raw_dir, index, total, cards = args
    # Frames come in templates of three, as at the telescope: a calibration template shares TPL START,
    # a science template is one OB (own OBS NAME/ID) of three exposures at one pointing.
    first = index - index % 3
    group = np.random.default_rng(first)
    weights = np.array([m[3] for m in MIX])
    catg, dpr_type, exptime, _ = MIX[group.choice(len(MIX), p=weights / weights.sum())]
    ra, dec, obs_id = float(group.uniform(0, 360)), float(group.uniform(-90, 30)), int(group.integers(10**8, 10**9))

    def mjd_of(i: int) -> float:
        return 60000 + (i * 365) // total + 0.5 + (i % 300) * 67.0 / 86400  # unique archive names

    rng = np.random.default_rng(index)
    tpl_start = FrameSpec(catg, dpr_type, mjd_of(first)).date_obs[:19]
    spec = FrameSpec(catg, dpr_type, mjd_of(index), exptime=exptime, tpl_start=tpl_start, tpl_nexp=3,
                     tpl_expno=index % 3 + 1, ra=ra, dec=dec, obs_id=obs_id,
                     obs_name=f"OB_{obs_id}" if catg == "SCIENCE" else "Calibration")
    header = fits.PrimaryHDU(header=primary_header(spec)).header
    text = header.tostring(endcard=False, padding=False)
    text += extra_cards(rng, max(0, cards - len(header) - 1)) + "END".ljust(80)
    text += " " * (-len(text) % 2880)
    path = raw_dir / spec.date_obs[:10] / f"{spec.archive_name}.fits"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("ascii"))


def timed_scan(db_path: Path, raw_dir: Path) -> tuple[float, int, int]:
    """Seconds for opening the index and scanning (as a new process would), files returned, files read."""
    started = time.perf_counter()
    with HeaderIndex(db_path) as index:
        result = index.scan(raw_dir)
        elapsed = time.perf_counter() - started
        if result.unreadable:
            raise RuntimeError(f"unexpected unreadable files: {result.unreadable[:3]}")
        return elapsed, len(result.frames), len(index.last_read)


def timed_plans(work: Path, raw_dir: Path) -> tuple[float, float, int]:
    """The whole planning (header index + classification + grouping + association + steps), cold then warm
    (median of 3).

    Header-only files have no IFU extensions, so the plan holds the pool's bookkeeping but no per-IFU steps.
    """
    config = {"global": {"using_ESO_Calibration": False}}
    started = time.perf_counter()
    plan_reduction(raw_dir, work / "out", config, index_path=work / "plan.sqlite")
    cold = time.perf_counter() - started
    warm = []
    for _ in range(3):
        started = time.perf_counter()
        plan = plan_reduction(raw_dir, work / "out", config, index_path=work / "plan.sqlite")
        warm.append(time.perf_counter() - started)
    return cold, statistics.median(warm), len(plan.steps)


def evict_page_cache(paths: list[Path]) -> None:
    os.sync()  # dirty pages cannot be evicted
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--cards", type=int, default=1500, help="cards per primary header")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated archive")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="muse-header-index-"))
    raw_dir = work / "raw"
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(os.cpu_count()) as pool:
        pool.map(write_file, [(raw_dir, i, args.files, args.cards) for i in range(args.files)], chunksize=100)
    paths = sorted(raw_dir.rglob("*.fits"))
    generation_s = time.perf_counter() - started
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files ({size / 1e6:.0f} MB, {args.cards} cards each) in {generation_s:.0f} s",
          flush=True)
    time.sleep(RACY_NS / 1e9 + 0.1)  # files modified within RACY_NS of a scan are re-read by the next one

    sample = paths[:: max(1, len(paths) // 300)]
    started = time.perf_counter()
    for path in sample:
        fits.getheader(path)
    getheader_s = (time.perf_counter() - started) / len(sample)

    cold, count, read = timed_scan(work / "cold.sqlite", raw_dir)
    assert count == read == len(paths), (count, read)
    warm_runs = []
    for _ in range(5):
        elapsed, count, read = timed_scan(work / "cold.sqlite", raw_dir)
        assert read == 0 and count == len(paths), (count, read)
        warm_runs.append(elapsed)
    evict_page_cache(paths)
    cold_evicted, _, read = timed_scan(work / "evicted.sqlite", raw_dir)
    assert read == len(paths)
    warm = statistics.median(warm_runs)
    plan_cold, plan_warm, steps = timed_plans(work, raw_dir)
    result = {
        "files": len(paths), "cards_per_header": args.cards, "bytes_total": size, "cpus": os.cpu_count(),
        "python": platform.python_version(), "astropy": astropy.__version__,
        "cold_s": cold, "cold_files_per_s": len(paths) / cold,
        "warm_s": warm, "warm_files_per_s": len(paths) / warm, "warm_runs_s": warm_runs,
        "cold_evicted_s": cold_evicted, "cold_evicted_files_per_s": len(paths) / cold_evicted,
        "astropy_getheader_ms_per_file": getheader_s * 1e3,
        "astropy_getheader_extrapolated_s": getheader_s * len(paths),
        "plan_cold_s": plan_cold, "plan_warm_s": plan_warm, "plan_steps": steps,
        "goal": {"cold_s": 10.0, "warm_s": 1.0},
        "notes": "cold: page cache warm (files just written); cold_evicted: posix_fadvise(DONTNEED) per file, "
                 "the page cache as a whole cannot be dropped without root; serial reader (no process pool)",
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "header_index.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"cold         {cold:6.2f} s  {len(paths) / cold:8.0f} files/s")
    print(f"cold_evicted {cold_evicted:6.2f} s  {len(paths) / cold_evicted:8.0f} files/s")
    print(f"warm         {warm:6.3f} s  {len(paths) / warm:8.0f} files/s  (median of {len(warm_runs)})")
    print(f"astropy getheader: {getheader_s * 1e3:.2f} ms/file, {getheader_s * len(paths):.0f} s for all")
    print(f"plan (scan+classify+group+associate): cold {plan_cold:.2f} s, warm {plan_warm:.2f} s, {steps} steps")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"archive kept in {work}")


if __name__ == "__main__":
    main()

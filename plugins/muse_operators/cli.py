"""``muse-airflow``: the command line of the package.

    muse-airflow demo [--workdir DIR] [--ifus 1]       the main job: synthetic data → muse_reduce DAG
    muse-airflow demo-data OUTDIR [--ifus 1] [--seed S] write synthetic raw frames
    muse-airflow plan RAWDIR [OUTDIR] [--json]         print the reduction plan
    muse-airflow recipe-params [RECIPE] [--snapshot F] a recipe's parameters, from the esorex image

Airflow is driven as a subprocess (``airflow dags test``), so this module imports no Airflow.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import __version__
from .errors import MuseAirflowError


def _ifu_list(text: str) -> list[int]:
    try:
        ifus = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ifus takes comma-separated IFU numbers 1..24, got {text!r}") from None
    if not ifus or any(not 1 <= ifu <= 24 for ifu in ifus):
        raise argparse.ArgumentTypeError(f"--ifus takes IFU numbers 1..24, got {text!r}")
    return ifus


def repo_root() -> Path:
    """The checkout this package runs from (editable install): holds dags/, config/, images/."""
    return Path(__file__).resolve().parents[2]


def cmd_recipe_params(args: argparse.Namespace) -> int:
    from .esorex_image import configured_image, recipe_catalog

    image = args.image or configured_image()
    catalog = recipe_catalog(image)
    if args.snapshot:
        Path(args.snapshot).write_text(json.dumps(catalog.to_snapshot(), indent=1) + "\n")
        print(f"wrote {len(catalog.recipes)} recipes to {args.snapshot}")
        return 0
    recipes = [args.recipe] if args.recipe else sorted(catalog.recipes)
    for recipe in recipes:
        print(recipe)
        for parameter in catalog.parameters_of(recipe).values():
            print("   ", parameter.describe())
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from .synthetic.night import write_night

    started = time.monotonic()
    night = write_night(Path(args.outdir), args.ifus, obs=args.obs, exposures=args.exposures, nights=args.nights,
                        seed=args.seed, ins_mode=args.mode, darks=args.darks, science=not args.calibrations_only,
                        illum=args.illum, extra_statics=args.extra_statics)
    if args.associations and night.manifest is not None and not args.calibrations_only:
        import json

        from .synthetic.archive import write_association_files

        written = write_association_files(night.raw_dir, json.loads(night.manifest.read_text()), night.statics)
        print(f"ESO association files (raw2raw, raw2master) {len(written)}")
    if args.fz:
        from .synthetic.fpack import fpack_night

        fpack_night(night.raw_dir)
    for tag, paths in night.frames.items():
        print(f"{tag:<8} {len(paths)} frames")
    for catg, path in night.statics.items():
        print(f"{catg:<15} {path}")
    print(f"manifest {night.manifest}")
    print(f"written in {time.monotonic() - started:.0f} s")
    return 0


def plan_directory_problems(rawdir: str, outdir: str) -> list[str]:
    """What is wrong with ``plan``'s two directories (relative paths are taken from the current directory)."""
    if not rawdir.strip():
        return ["RAWDIR is empty: give the directory that holds the raw MUSE files (an empty argument would "
                "scan the current directory)"]
    raw, out = Path(rawdir).absolute(), Path(outdir).absolute()
    problems = []
    if not raw.is_dir():
        problems.append(f"RAWDIR {raw} does not exist or is not a directory")
    if out.exists() and not out.is_dir():
        problems.append(f"OUTDIR {out} exists and is not a directory: give a directory for the products")
    elif raw.is_dir() and out.resolve().is_relative_to(raw.resolve()):
        problems.append(f"OUTDIR {out} is inside RAWDIR {raw}: raw data is never written; put the products "
                        "elsewhere")
    return problems


def cmd_plan(args: argparse.Namespace) -> int:
    from .planner import plan_reduction

    outdir = args.outdir or "reduced"
    problems = plan_directory_problems(args.rawdir, outdir)
    if problems:
        for problem in problems:
            print(f"muse-airflow plan: {problem}", file=sys.stderr)
        return 2
    plan = plan_reduction(args.rawdir, outdir, args.config, args.ifus, index_path=args.index)
    if args.json:
        print(plan.to_json())
        return 1 if plan.errors else 0
    print("\n".join(plan.describe()))
    for path, reason in plan.unclassified:
        print(f"not used: {path}: {reason}")
    return 1 if plan.errors else 0


def airflow_environment(airflow_home: Path) -> dict[str, str]:
    """Environment for a self-contained Airflow on SQLite that loads this checkout's DAGs."""
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(repo_root() / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PLUGINS_FOLDER=str(airflow_home / "plugins"),
    )
    return env


def airflow_command() -> list[str]:
    """The ``airflow`` executable of this interpreter's environment."""
    candidate = Path(sys.executable).with_name("airflow")
    return [str(candidate)] if candidate.exists() else ["airflow"]


DEMO_CONFIG = {"global": {"using_ESO_Calibration": False}}  # the synthetic night has raw calibrations only


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: write a synthetic night, reduce it with the muse_reduce DAG, say where the cubes are."""
    from .synthetic.night import write_night

    workdir = Path(args.workdir).absolute()
    raw_dir, out_dir, airflow_home = workdir / "raw", workdir / "reduced", workdir / "airflow"
    started = time.monotonic()
    if not any(raw_dir.glob("MUSE.*.fits")):
        print(f"writing a synthetic MUSE night (IFUs {args.ifus}, {args.exposures} exposures) to {raw_dir}", flush=True)
        write_night(raw_dir, args.ifus, exposures=args.exposures, seed=args.seed)
    written = time.monotonic()
    env = airflow_environment(airflow_home)
    subprocess.run([*airflow_command(), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    conf = {"raw_dir": str(raw_dir), "output_dir": str(out_dir), "ifus": args.ifus, "config": DEMO_CONFIG}
    log_path = workdir / "muse_reduce.log"
    print(f"running the muse_reduce DAG (airflow dags test), log: {log_path}", flush=True)
    with log_path.open("w") as log:
        result = subprocess.run(
            [*airflow_command(), "dags", "test", "muse_reduce", "-c", json.dumps(conf)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        print(f"muse_reduce FAILED after {elapsed:.0f} s; see {log_path}", file=sys.stderr)
        return 1
    products = sorted(out_dir.rglob("*.fits"))
    print(f"muse_reduce succeeded: {len(products)} products under {out_dir}; "
          f"{written - started:.0f} s writing data, {time.monotonic() - written:.0f} s reducing")
    cubes = [p for p in products if p.name.startswith("DATACUBE_FINAL")]
    for cube in cubes:
        kind = "combined cube" if cube.parent.name == "exp_combine" else "exposure cube"
        print(f"{kind}: {cube}")
    return 0 if cubes else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muse-airflow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="reduce the bundled synthetic data with the muse_reduce DAG")
    demo.add_argument("--workdir", default="demo", help="where raw data, products and Airflow's state go")
    demo.add_argument("--ifus", type=_ifu_list, default=[1, 2, 3],
                      help="comma-separated IFUs to simulate (muse_standard needs >= 3 around the star)")
    demo.add_argument("--exposures", type=int, default=2, help="OBJECT exposures of the OB")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("demo-data", help="write synthetic raw MUSE frames")
    data.add_argument("outdir")
    data.add_argument("--ifus", type=_ifu_list, default=[1, 2, 3],
                      help="IFUs with data (IFU 1 always; muse_standard needs >= 3 around the star)")
    data.add_argument("--obs", type=int, default=1, help="OBs per night (pairs share a pointing)")
    data.add_argument("--exposures", type=int, default=2, help="OBJECT exposures per OB (>= 3: two EXPTIMEs)")
    data.add_argument("--nights", type=int, default=1)
    data.add_argument("--seed", type=int, default=1)
    data.add_argument("--mode", default="WFM-NOAO-N", choices=["WFM-NOAO-N", "WFM-NOAO-E", "WFM-AO-N", "WFM-AO-E",
                                                               "NFM-AO-N"], help="INS MODE of every frame")
    data.add_argument("--darks", action="store_true", help="also a DARK template per night")
    data.add_argument("--calibrations-only", action="store_true", help="no OBJECT/SKY/STD frames")
    data.add_argument("--illum", action="store_true", help="also an attached lamp flat (FLAT,LAMP,ILLUM) per night")
    data.add_argument("--extra-statics", action="store_true",
                      help="also BADPIX_TABLE, ASTROMETRY_WCS and VIGNETTING_MASK")
    data.add_argument("--fz", action="store_true", help="fpack-compress the raw frames (MUSE.*.fits.fz, RICE_1)")
    data.add_argument("--no-associations", dest="associations", action="store_false",
                      help="no ESO association files (by default each OBJECT/SKY/STD frame gets its "
                           "<frame>_raw2raw.xml and _raw2master.xml, as the archive delivers them)")
    data.set_defaults(func=cmd_demo_data)

    plan = sub.add_parser("plan", help="print the reduction plan for a raw directory")
    plan.add_argument("rawdir")
    plan.add_argument("outdir", nargs="?", help="where products would go (default ./reduced)")
    plan.add_argument("--ifus", type=_ifu_list, default=None)
    plan.add_argument("--config", help="a MUSEreduce-style JSON config (default: config/defaults.json)")
    plan.add_argument("--index", help="header index (SQLite) to read headers through; made if missing")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=cmd_plan)

    params = sub.add_parser("recipe-params", help="list recipe parameters from the esorex image")
    params.add_argument("recipe", nargs="?")
    params.add_argument("--image", help="esorex image (default $MUSE_ESOREX_IMAGE or muse-esorex:2.8.7-debian)")
    params.add_argument("--snapshot", help="write every recipe's parameters as JSON to this file")
    params.set_defaults(func=cmd_recipe_params)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (MuseAirflowError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"muse-airflow: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

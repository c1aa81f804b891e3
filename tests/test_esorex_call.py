"""The esorex call's rules: argument list, mounts, staging, readability — without running anything."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from astropy.io import fits

from muse_operators.errors import RecipeFailedError, SofError
from muse_operators.esorex_call import IMAGE_USER, build_call
from muse_operators.products import categorise, check_expected, discard, listed_products, publish
from muse_operators.recipe_params import RecipeCatalog
from muse_operators.sof import SofEntry, render_sof

from .conftest import RECIPE_PARAMS_SNAPSHOT


def _fits(path: Path, catg: str | None) -> Path:
    header = fits.Header()
    if catg:
        header["HIERARCH ESO PRO CATG"] = catg
    fits.PrimaryHDU(header=header).writeto(path)
    return path


@pytest.fixture()
def raw(tmp_path: Path) -> list[Path]:
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir(mode=0o755)
    raw_dir.chmod(0o755)
    return [_fits(raw_dir / f"MUSE.2024-01-01T12:00:0{i}.000.fits", None) for i in range(3)]


def test_command_is_an_argument_list_with_staging_output_and_validated_parameters(raw, tmp_path):
    call = build_call("muse_bias", [[str(p), "BIAS"] for p in raw], tmp_path / "out", {"nifu": 1, "combine": "median"})
    staging = call.new_staging_dir()
    argv = call.argv(RecipeCatalog.from_snapshot(RECIPE_PARAMS_SNAPSHOT))
    assert argv[0] == "esorex"
    assert f"--output-dir={staging}" in argv and f"--log-dir={staging}" in argv
    assert argv[-4:] == ["muse_bias", "--nifu=1", "--combine=median", f"{staging}/muse_bias.sof"]
    assert staging.parent == tmp_path and staging.name.startswith(".out.staging-")


def test_inputs_mounted_read_only_and_only_staging_writable(raw, tmp_path):
    products = tmp_path / "calib"
    products.mkdir()
    master = _fits(products / "MASTER_BIAS-01.fits", "MASTER_BIAS")
    call = build_call("muse_flat", [[str(raw[0]), "FLAT"], [str(master), "MASTER_BIAS"]], tmp_path / "flat",
                      read_only_dirs=[str(raw[0].parent / "sub")])
    staging = call.new_staging_dir()
    mounts = {m.path: m.read_only for m in call.mounts()}
    assert mounts == {str(raw[0].parent): True, str(products): True, str(staging): False}


def test_sof_rendering_checks_every_entry(raw, tmp_path):
    assert render_sof([SofEntry(str(raw[0]), "BIAS")]) == f"{raw[0]} BIAS\n"
    with pytest.raises(SofError, match="does not exist"):
        render_sof([SofEntry(str(tmp_path / "missing.fits"), "BIAS")])
    with pytest.raises(SofError, match="is not a pipeline tag"):
        render_sof([SofEntry(str(raw[0]), "bias frame")])
    with pytest.raises(SofError, match="must be absolute"):
        render_sof([SofEntry("raw/x.fits", "BIAS")])
    with pytest.raises(SofError, match="at least one"):
        render_sof([])


def test_unreadable_input_is_reported_with_the_fix(raw, tmp_path):
    raw[0].parent.chmod(0o700)
    call = build_call("muse_bias", [[str(p), "BIAS"] for p in raw], tmp_path / "out")
    call.new_staging_dir()
    with pytest.raises(SofError, match=r"not searchable by uid:gid 10001:10001.*chmod o\+rx"):
        call.check_readable(IMAGE_USER)
    raw[0].parent.chmod(0o755)
    raw[1].chmod(0o600)
    with pytest.raises(SofError, match=rf"{raw[1]} \(BIAS\) is not readable.*chmod o\+r"):
        call.check_readable(IMAGE_USER)
    raw[1].chmod(0o644)
    call.check_readable(IMAGE_USER)


def test_products_are_found_by_pro_catg_and_published_atomically(tmp_path):
    staging = tmp_path / ".out.staging-1"
    staging.mkdir()
    _fits(staging / "MASTER_FLAT-01.fits", "MASTER_FLAT")
    _fits(staging / "TRACE_TABLE-01.fits", "TRACE_TABLE")
    _fits(staging / "not_a_product.fits", None)
    (staging / "muse_flat.log").write_text("log")
    (staging / "muse_flat.products.json").write_text(json.dumps(
        [{"name": "MASTER_FLAT-01.fits", "category": "MASTER_FLAT"},
         {"name": "TRACE_TABLE-01.fits", "category": "TRACE_TABLE"}]))
    found = categorise(listed_products(staging, "muse_flat.products.json"))
    assert sorted(found) == ["MASTER_FLAT", "TRACE_TABLE"]
    check_expected(found, ["MASTER_FLAT", "TRACE_TABLE"], "muse_flat")
    with pytest.raises(RecipeFailedError, match="did not write TRACE_SAMPLES"):
        check_expected(found, ["TRACE_SAMPLES"], "muse_flat")
    published = publish(staging, tmp_path / "out", found)
    assert published == {"MASTER_FLAT": [str(tmp_path / "out/MASTER_FLAT-01.fits")],
                         "TRACE_TABLE": [str(tmp_path / "out/TRACE_TABLE-01.fits")]}
    assert (tmp_path / "out/muse_flat.log").is_file() and not staging.exists()


def test_failed_staging_keeps_the_log_and_drops_partial_products(tmp_path):
    staging = tmp_path / ".out.staging-2"
    staging.mkdir()
    _fits(staging / "MASTER_BIAS-01.fits", "MASTER_BIAS")
    (staging / "muse_bias.log").write_text("[ ERROR ] it broke")
    kept = discard(staging)
    assert kept == tmp_path / ".out.failed-2"
    assert sorted(p.name for p in kept.iterdir()) == ["muse_bias.log"]
    assert not (tmp_path / "out").exists()


def test_sof_templates_match_the_registry_and_order_the_sof(raw):
    from muse_operators.recipes import REGISTRY
    from muse_operators.sof import render_from_template, template_tags

    for name, spec in REGISTRY.items():
        assert template_tags(name) == list(spec.tags), f"include/sof_templates/{name}.sof is out of date"
    master = raw[1]
    text = render_from_template("muse_flat", [SofEntry(str(master), "MASTER_BIAS"), SofEntry(str(raw[0]), "FLAT")])
    assert text.splitlines() == [f"{raw[0]} FLAT", f"{master} MASTER_BIAS"]
    with pytest.raises(SofError, match="muse_flat does not take ARC; its SOF tags are FLAT, MASTER_BIAS"):
        render_from_template("muse_flat", [SofEntry(str(raw[0]), "ARC")])

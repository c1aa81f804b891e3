"""The configuration layer, as a user relies on it: old MUSEreduce files load, mistakes are named.

No Docker and no Airflow: recipe parameters are checked against the snapshot in config/recipe_params/.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from muse_operators.config import (
    ALIASES, ESOREX_KWARGS, RECIPE_KEYS, Config, ConfigError, load_config, omp_num_threads,
)
from muse_operators.config import paths as config_paths
from muse_operators.errors import MuseAirflowError
from muse_operators.recipe_params import RecipeCatalog

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "config" / "schema.json").read_text())
DEFAULTS = json.loads((REPO / "config" / "defaults.json").read_text())
SNAPSHOT = REPO / "config" / "recipe_params" / "muse-2.8.7-debian.json"
SECTIONS = ["global", "cleanup", "calibration", "sci_basic", "std_flux", "sky", "sci_post",
            "dither_collect", "exp_align", "exp_combine"]


def problems_of(settings) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(settings)
    return info.value.problems


def one_problem_about(problems: list[str], path: str) -> str:
    hits = [p for p in problems if path in p]
    assert len(hits) == 1, f"expected one problem naming {path}, got {problems}"
    return hits[0]


# --- schema and defaults ------------------------------------------------------------------------

def test_defaults_are_complete_and_valid():
    Draft202012Validator.check_schema(SCHEMA)
    assert list(Draft202012Validator(SCHEMA).iter_errors(DEFAULTS)) == []
    assert list(DEFAULTS) == SECTIONS
    for section in SECTIONS:
        body = SCHEMA["properties"][section]
        assert body["additionalProperties"] is False, section
        for key, prop in body["properties"].items():
            shared = SCHEMA["$defs"].get(prop.get("$ref", "").rsplit("/", 1)[-1], {})
            assert prop.get("description", shared.get("description", "")).strip(), f"{section}.{key}: no description"
            assert DEFAULTS[section][key] == prop["default"], f"{section}.{key}: defaults.json != schema default"
        assert set(DEFAULTS[section]) == set(body["properties"]), section


def test_no_config_gives_the_defaults():
    config = load_config(None)
    assert isinstance(config, Config) and dict(config) == DEFAULTS
    assert config.notes == [] and config.warnings == []
    assert load_config(json.loads(json.dumps(config))) == config  # JSON round trip (e.g. through XCom)


def test_documented_enums_match_the_pipeline():
    catalog = RecipeCatalog.from_snapshot(SNAPSHOT)
    props = {s: SCHEMA["properties"][s]["properties"] for s in SECTIONS}
    assert props["global"]["mode"]["enum"] == ["WFM-NOAO", "WFM-AO", "NFM-AO"]
    assert props["sky"]["sky_field"]["enum"] == ["auto", "object"]
    assert set(props["sci_post"]["autocalib"]["enum"]) == set(catalog.recipes["muse_scipost"]["autocalib"].choices)
    assert set(props["sky"]["method"]["enum"]) == set(catalog.recipes["muse_scipost"]["skymethod"].choices)
    assert set(props["exp_combine"]["weight"]["enum"]) == set(catalog.recipes["muse_exp_combine"]["weight"].choices)


def test_recipe_tables_name_real_settings_and_parameters():
    catalog = RecipeCatalog.from_snapshot(SNAPSHOT)
    for key in RECIPE_KEYS:
        section, name = key.path.split(".")
        assert name in SCHEMA["properties"][section]["properties"], key.path
        assert key.parameter in catalog.parameters_of(key.recipe), key
    for path, recipe in ESOREX_KWARGS.items():
        section, name = path.split(".")
        assert name in SCHEMA["properties"][section]["properties"], path
        assert recipe in catalog.recipes, path
    every_kwargs_key = {f"{s}.{k}" for s in SECTIONS for k in SCHEMA["properties"][s]["properties"]
                        if k.startswith("esorex_kwargs")}
    assert every_kwargs_key == set(ESOREX_KWARGS)


def test_aliases_map_to_canonical_keys_only():
    for alias in ALIASES:
        new_section, new_key = alias.new.split(".")
        old_section, old_key = alias.old.split(".")
        assert new_key in SCHEMA["properties"][new_section]["properties"], alias
        assert old_key not in SCHEMA["properties"][old_section]["properties"], alias
        assert alias.note


# --- MUSEreduce-era files ------------------------------------------------------------------------

MUSEREDUCE_FILE = {  # as MUSEpack's config.json and its 2.8.7 / 2.8.9 code read it
    "global": {"pipeline_path": "/opt/muse/2.8.7/", "mode": "WFM-AO", "withrvcorr": True, "auto_sort_data": True,
               "auto_create_OB_list": False, "using_specific_exposure_time": 860, "dither_multiple_OBs": False,
               "n_CPU": 8, "rootpath": "/data/ngc6530/", "OB": "WFM-AO-NGC6530---tile-1", "OB_list": [],
               "static_calib_path": "/opt/local/share/esopipes/datastatic/muse-2.8.7/"},
    "calibration": {"execute": True, "using_ESO_calibration": False, "renew_statics": True, "dark": False,
                    "create_sof": True, "esorex_kwargs_bias": "none", "esorex_kwargs_flat": "--combine=median"},
    "sci_basic": {"execute": True, "execute_std": True, "skyreject": "15.,15.,1", "skylines": "5577.339,6300.304",
                  "esorex_kwargs": None, "create_sof": True},
    "sky": {"execute": True, "modified": False, "sky_field": "auto", "fraction": 0.05, "ignore": 0.05,
            "method": "model", "create_sof": True},
    "sci_post": {"execute": True, "autocalib": None, "subtract_sky": True, "raman": True, "create_sof": True},
    "dither_collect": {"execute": True, "user_list": ["180431-242316_0860_000_00"]},
    "exp_align": {"execute": True, "srcmin": 3, "srcmax": 40, "create_sof": True},
    "exp_combine": {"execute": True, "weight": "fwhm", "create_sof": True},
}


def test_musereduce_file_loads_with_canonical_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(MUSEREDUCE_FILE, indent=2))
    config = load_config(path)
    assert config.source == str(path)
    assert config["global"]["using_ESO_Calibration"] is False
    assert config["global"]["renew_statics"] is True
    assert config["global"]["auto_create_OB_folders"] is False
    assert config["global"]["exp_list"] == ["180431-242316_0860_000_00"]
    assert config["global"]["OB_list"] == ["WFM-AO-NGC6530---tile-1"]
    assert config["sci_basic"]["skyreject"] == "15.,15.,1"
    assert config["sci_post"]["autocalib"] == "none"
    assert config["sci_post"]["raman"] is True  # MUSEreduce forced it off for WFM-AO
    assert config["calibration"]["esorex_kwargs_bias"] == "" and config["sci_basic"]["esorex_kwargs"] == ""
    for old in ("using_ESO_calibration", "renew_statics"):
        assert old not in config["calibration"]
    assert "OB" not in config["global"] and "user_list" not in config["dither_collect"]
    assert "auto_create_OB_list" not in config["global"]
    renamed = "\n".join(config.notes)
    for old in ("calibration.using_ESO_calibration", "calibration.renew_statics", "dither_collect.user_list",
                "global.auto_create_OB_list", "global.OB", "sci_post.autocalib"):
        assert old in renamed, old
    assert list(Draft202012Validator(SCHEMA).iter_errors(dict(config))) == []
    assert config.recipe_parameters("muse_exp_align") == {"srcmin": 3, "srcmax": 40}
    assert config.recipe_parameters("muse_flat") == {"combine": "median"}


def test_docs_spellings_are_accepted():
    config = load_config({"sci_basic": {"sky_reject": "10.,10.,2"}, "exp_align": {"scrmin": 4, "scrmax": 60},
                          "global": {"using_ESO_Calibration": False}, "sky": {"skyfield": "object"}})
    assert config["sci_basic"]["skyreject"] == "10.,10.,2"
    assert (config["exp_align"]["srcmin"], config["exp_align"]["srcmax"]) == (4, 60)
    assert config["sky"]["sky_field"] == "object" and config["global"]["using_ESO_Calibration"] is False


def test_alias_and_canonical_key_with_different_values_are_rejected():
    problem = one_problem_about(problems_of({"global": {"using_ESO_Calibration": True},
                                             "calibration": {"using_ESO_calibration": False}}),
                                "calibration.using_ESO_calibration")
    assert "global.using_ESO_Calibration" in problem and "keep only" in problem


# --- mistakes are named --------------------------------------------------------------------------

def test_typo_is_rejected_with_the_closest_key():
    problem = one_problem_about(problems_of({"sci_basic": {"skyrejct": "15.,15.,1"}}), "sci_basic.skyrejct")
    assert "unknown setting" in problem and "did you mean 'skyreject'" in problem
    problem = one_problem_about(problems_of({"sci_basc": {"execute": False}}), "sci_basc")
    assert "did you mean 'sci_basic'" in problem
    problem = one_problem_about(problems_of({"global": {"fraction": 0.1}}), "global.fraction")
    assert "sky.fraction" in problem  # right key, wrong section


def test_wrong_enum_and_type_name_path_value_and_choices():
    problem = one_problem_about(problems_of({"global": {"mode": "WFM"}}), "global.mode")
    assert '"WFM"' in problem and all(m in problem for m in ("WFM-NOAO", "WFM-AO", "NFM-AO"))
    problem = one_problem_about(problems_of({"sky": {"fraction": "0.05"}}), "sky.fraction")
    assert '"0.05"' in problem and "a string" in problem and "a number" in problem
    problem = one_problem_about(problems_of({"sci_post": {"autocalib": "deep"}}), "sci_post.autocalib")
    assert "deepfield" in problem and "user" in problem
    problem = one_problem_about(problems_of({"sci_basic": {"skyreject": "15;15;1"}}), "sci_basic.skyreject")
    assert '"15;15;1"' in problem and "comma-separated" in problem


def test_all_problems_are_reported_at_once():
    problems = problems_of({"global": {"mode": "wfm", "n_CPU": 0}, "sky": {"sky_field": "sky", "fractoin": 0.1},
                            "exp_combine": {"weight": "seeing"}})
    assert len(problems) == 5
    for path in ("global.mode", "global.n_CPU", "sky.sky_field", "sky.fractoin", "exp_combine.weight"):
        one_problem_about(problems, path)
    with pytest.raises(ConfigError) as info:
        load_config({"global": {"mode": "wfm", "n_CPU": 0}})
    assert "2 problems" in str(info.value) and "global.mode" in str(info.value) and "global.n_CPU" in str(info.value)


def test_config_error_types():
    with pytest.raises(ConfigError) as info:
        load_config({"global": {"n_CPU": 0}})
    assert isinstance(info.value, MuseAirflowError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "4"])
def test_bad_n_cpu_is_rejected(value):
    problem = one_problem_about(problems_of({"global": {"n_CPU": value}}), "global.n_CPU")
    assert json.dumps(value) in problem and "-1" in problem


def test_n_cpu_becomes_a_valid_thread_count():
    assert load_config({"global": {"n_CPU": -1}}).omp_num_threads(available=12) == 12
    assert load_config({"global": {"n_CPU": 3}}).omp_num_threads(available=12) == 3
    assert load_config(None).omp_num_threads() >= 1
    with pytest.raises(ConfigError):
        omp_num_threads(0)


@pytest.mark.parametrize("value,ok", [(False, True), (860, True), (0.5, True), (0, False), (-5, False),
                                      (True, False), ("860", False)])
def test_specific_exposure_time(value, ok):
    settings = {"global": {"using_specific_exposure_time": value}}
    if ok:
        assert load_config(settings)["global"]["using_specific_exposure_time"] == value
    else:
        one_problem_about(problems_of(settings), "global.using_specific_exposure_time")


# --- esorex_kwargs and settings that become recipe parameters ------------------------------------

def test_unknown_recipe_parameter_in_esorex_kwargs_is_rejected():
    problem = one_problem_about(problems_of({"calibration": {"esorex_kwargs_flat": "--samples=true --smaples=1"}}),
                                "calibration.esorex_kwargs_flat")
    assert "muse_flat" in problem and "--smaples" in problem and "did you mean --samples" in problem
    assert "--nsum" in problem and "--edgefrac" in problem  # the valid parameters are listed


def test_good_esorex_kwargs_pass_and_reach_the_recipe():
    config = load_config({"sci_post": {"esorex_kwargs": "--crsigma=10 --save=cube,individual --astrometry"}})
    assert config.recipe_parameters("muse_scipost") == {
        "skymethod": "model", "autocalib": "none", "rvcorr": "bary",
        "crsigma": 10.0, "save": "cube,individual", "astrometry": True}


@pytest.mark.parametrize("path,text,expected", [
    ("calibration.esorex_kwargs_bias", "--nifu=30", "maximum"),
    ("exp_combine.esorex_kwargs", "--weight=header", "exp_combine.weight"),  # owned by a setting
    ("sky.esorex_kwargs", "fraction=0.1", "--name=value"),
    ("std_flux.esorex_kwargs", "--profile=square --filter='white", "cannot split"),
])
def test_bad_esorex_kwargs_are_explained(path, text, expected):
    section, key = path.split(".")
    problem = one_problem_about(problems_of({section: {key: text}}), path)
    assert expected in problem


def test_settings_are_checked_against_the_recipe_parameter_they_become():
    data = json.loads(SNAPSHOT.read_text())
    for entry in data["parameters"]:
        if entry["recipe"] == "muse_create_sky" and entry["display_name"] == "fraction":
            entry["valmax"] = 0.5  # a pipeline version with a narrower range than the schema
    catalog = RecipeCatalog.from_entries(data["parameters"], recipe_names=data["recipes"])
    assert load_config({"sky": {"fraction": 0.4}}, catalog=catalog)["sky"]["fraction"] == 0.4
    with pytest.raises(ConfigError) as info:
        load_config({"sky": {"fraction": 0.8}}, catalog=catalog)
    problem = one_problem_about(info.value.problems, "sky.fraction")
    assert "muse_create_sky --fraction" in problem and "0.5" in problem


# --- merging and cross-checks --------------------------------------------------------------------

def test_deep_merge_keeps_defaults_of_unspecified_keys():
    config = load_config({"sky": {"fraction": 0.2}, "global": {"OB_list": ["OB-2"]}})
    assert config["sky"]["fraction"] == 0.2
    assert config["sky"]["ignore"] == DEFAULTS["sky"]["ignore"] and config["sky"]["method"] == "model"
    assert config["global"]["OB_list"] == ["OB-2"] and config["global"]["mode"] == DEFAULTS["global"]["mode"]
    assert config["exp_combine"] == DEFAULTS["exp_combine"]


def test_raman_needs_ao_and_is_no_longer_forced_off():
    assert load_config({"global": {"mode": "WFM-AO"}, "sci_post": {"raman": True}})["sci_post"]["raman"] is True
    problem = one_problem_about(problems_of({"sci_post": {"raman": True}}), "sci_post.raman")
    assert "WFM-NOAO" in problem and "WFM-AO" in problem


def test_cross_checks():
    one_problem_about(problems_of({"global": {"dither_multiple_OBs": True}}), "global.OB_list")
    one_problem_about(problems_of({"exp_align": {"srcmin": 50, "srcmax": 10}}), "exp_align.srcmin")
    config = load_config({"sky": {"modified": True}})
    assert any("subtract-model" in w for w in config.warnings)
    assert load_config({"sky": {"modified": True, "method": "subtract-model"}}).warnings == []


# --- files and locations -------------------------------------------------------------------------

def test_broken_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "sky": {\n    "fraction": 0.1,\n  }\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "line 4" in str(info.value)
    path.write_text('{"sky": {"fraction": 0.1, "fraction": 0.2}}')
    with pytest.raises(ConfigError, match="'fraction' is given twice"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")


def test_config_dir_can_be_overridden(tmp_path, monkeypatch):
    defaults = json.loads(json.dumps(DEFAULTS))
    defaults["global"]["mode"] = "NFM-AO"
    (tmp_path / "defaults.json").write_text(json.dumps(defaults))
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    monkeypatch.setenv(config_paths.ENV_VAR, str(tmp_path))
    import muse_operators.config as config_module

    assert config_module.DEFAULTS_PATH == tmp_path / "defaults.json"
    assert config_module.SCHEMA_PATH == tmp_path / "schema.json"
    assert load_config(None)["global"]["mode"] == "NFM-AO"
    assert config_paths.recipe_snapshot_path() == SNAPSHOT  # falls back to the checkout's snapshot


def test_config_layer_does_not_import_airflow():
    code = ("import sys; from muse_operators.config import load_config; load_config(None); "
            "sys.exit(any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_the_trigger_form_has_every_config_key_with_its_default():
    """The muse_reduce form is generated from the schema: every key a field, the defaults untouched."""
    from muse_operators.config.form import config_from_form, form_fields
    from muse_operators.config.load import read_json
    from muse_operators.config.paths import defaults_path

    fields = {f.name: f for f in form_fields()}
    defaults = read_json(defaults_path())
    assert set(fields) == {f"{s}__{k}" for s, keys in defaults.items() for k in keys}
    # the type (first non-null type: the UI's widget) is the schema's; null admitted: every field optional
    assert fields["sky__modified"].schema["type"] == ["null", "boolean"] and fields["sky__modified"].default is False
    assert fields["global__n_CPU"].schema["type"] == ["null", "integer"] and fields["global__n_CPU"].default == -1
    submitted = {name: f.default for name, f in fields.items()}
    assert config_from_form(submitted) == {}  # an untouched form changes nothing
    submitted["sky__modified"] = True
    base = {"global": {"using_ESO_Calibration": False}, "sky": {"sky_field": "object"}}
    assert config_from_form(submitted, base) == {"global": {"using_ESO_Calibration": False},
                                                 "sky": {"sky_field": "object", "modified": True}}
    assert load_config(config_from_form(submitted, base)).get_path("sky.modified") is True


def test_every_form_field_may_be_left_empty_and_keeps_its_checks():
    """Issue 14: the UI treats a Param whose type does not admit null as required and blocks Trigger while
    it is empty. Every config field admits null (= not set); a given value still meets the schema."""
    import jsonschema

    from muse_operators.config.form import config_from_form, form_fields

    fields = form_fields()
    for field in fields:
        jsonschema.validate(None, field.schema)  # empty: allowed
        jsonschema.validate(field.default, field.schema)  # the default submits as it is
    by_name = {f.name: f for f in fields}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("yes", by_name["sky__modified"].schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(-2, by_name["global__n_CPU"].schema)  # the schema's minimum stays
    enum_fields = [f for f in fields if "enum" in f.schema]
    assert enum_fields and all(None in f.schema["enum"] for f in enum_fields)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("no-such-choice", enum_fields[0].schema)
    # what the UI sends for fields left empty or cleared: None, which changes nothing
    assert config_from_form({f.name: None for f in fields}) == {}
    assert config_from_form({"sky__modified": None}, {"sky": {"modified": True}}) == {"sky": {"modified": True}}


def test_a_run_request_names_every_problem_of_the_form_at_once(tmp_path):
    from muse_operators.dag_run import RunRefused, RunRequest

    with pytest.raises(RunRefused) as refused:
        RunRequest.from_params({"raw_dir": "", "output_dir": None, "global__n_CPU": -7, "run_name": None})
    problems = refused.value.problems
    assert any(p.startswith("raw_dir is empty") for p in problems)
    assert any(p.startswith("output_dir is empty") for p in problems)
    assert any("n_CPU" in p for p in problems), problems
    for raw, out, message in (("raw", "/out", "raw_dir 'raw' is not an absolute path"),
                              (str(tmp_path / "missing"), "/out", "is not a directory on the Airflow worker"),
                              (str(tmp_path), "out", "output_dir 'out' is not an absolute path"),
                              (str(tmp_path), str(tmp_path / "products"), "is inside raw_dir")):
        with pytest.raises(RunRefused, match=message):
            RunRequest.from_params({"raw_dir": raw, "output_dir": out})
    request = RunRequest.from_params({"raw_dir": f" {tmp_path} ", "output_dir": "/data/out", "run_name": "",
                                      "ifus": [], "config": None, "sky__modified": None})
    assert (request.raw_dir, request.run_name, request.ifus) == (str(tmp_path), None, None)
    assert request.config.get_path("sky.modified") is False  # left empty: the default


def test_the_dag_offers_the_form_fields_as_params():
    import runpy

    dag = runpy.run_path(str(REPO / "dags" / "muse_reduce.py"))["dag"]
    from muse_operators.config.form import form_fields

    for field in form_fields():
        param = dag.params.get_param(field.name)
        assert param.value == field.default and param.schema["section"] == f"config: {field.section}"

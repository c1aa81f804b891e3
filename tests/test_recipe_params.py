"""Recipe parameter validation against esorex's own parameter lists (no container needed).

The snapshot in config/recipe_params/ is what the offline image's esorex reports; a container test
below checks it still equals the image, so these fast tests validate against the real lists.
"""
from __future__ import annotations

import pytest

from muse_operators.errors import RecipeParameterError
from muse_operators.esorex_image import recipe_catalog
from muse_operators.recipe_params import RecipeCatalog, format_value, parse_esorex_kwargs

from .conftest import RECIPE_PARAMS_SNAPSHOT


@pytest.fixture(scope="module")
def catalog() -> RecipeCatalog:
    return RecipeCatalog.from_snapshot(RECIPE_PARAMS_SNAPSHOT)


def test_snapshot_lists_every_recipe_musereduce_runs(catalog):
    for recipe in ("muse_bias", "muse_dark", "muse_flat", "muse_wavecal", "muse_lsf", "muse_twilight",
                   "muse_scibasic", "muse_standard", "muse_create_sky", "muse_scipost", "muse_exp_align",
                   "muse_exp_combine", "muse_illum"):
        assert recipe in catalog.recipes
    assert catalog.parameters_of("muse_illum") == {}  # a recipe without parameters is still known


def test_valid_parameters_become_esorex_options_in_order(catalog):
    args = catalog.command_line("muse_scibasic", {"nifu": "-1", "resample": True, "skyreject": "15.,15.,1",
                                                  "skylines": "5577.339,6300.304"})
    assert args == ["--nifu=-1", "--resample=true", "--skyreject=15.,15.,1", "--skylines=5577.339,6300.304"]


def test_unknown_parameter_names_recipe_parameter_and_valid_ones(catalog):
    with pytest.raises(RecipeParameterError) as error:
        catalog.validate("muse_bias", {"nifu": 1, "combin": "median"})
    text = str(error.value)
    assert "recipe muse_bias has no parameter 'combin'" in text
    assert "--combine (string one of average|median|minmax|sigclip" in text
    assert "--nifu (int in [-1, 24]" in text


@pytest.mark.parametrize(
    ("recipe", "parameters", "message"),
    [
        ("muse_bias", {"nifu": 25}, "above the maximum 24"),
        ("muse_bias", {"nifu": "two"}, "is not a valid int"),
        ("muse_bias", {"nifu": 1.5}, "not a whole number"),
        ("muse_bias", {"combine": "mean"}, "choose one of average, median, minmax, sigclip"),
        ("muse_flat", {"samples": "maybe"}, "use true or false"),
        ("muse_exp_align", {"srcmin": True}, "a boolean is not an integer"),
        ("muse_nonexistent", {}, "is not in the esorex image"),
    ],
)
def test_bad_values_are_rejected_with_the_reason(catalog, recipe, parameters, message):
    with pytest.raises(RecipeParameterError, match=message.replace("[", r"\[").replace("(", r"\(")):
        catalog.validate(recipe, parameters)


def test_every_problem_is_reported_at_once(catalog):
    with pytest.raises(RecipeParameterError) as error:
        catalog.validate("muse_bias", {"nifu": 99, "bogus": 1})
    assert "above the maximum" in str(error.value) and "'bogus'" in str(error.value)


def test_values_keep_their_esorex_spelling():
    assert format_value(True) == "true"
    assert format_value(5.0) == "5.0"
    assert format_value("white,Johnson_V") == "white,Johnson_V"


def test_esorex_kwargs_strings_are_split_without_a_shell():
    assert parse_esorex_kwargs("--nifu=1 --merge --filter='white,Johnson V'") == {
        "nifu": "1", "merge": "true", "filter": "white,Johnson V"}
    assert parse_esorex_kwargs("") == {}
    with pytest.raises(RecipeParameterError, match="'; rm -rf /' is not a recipe option"):
        parse_esorex_kwargs("--nifu=1 '; rm -rf /'")
    with pytest.raises(RecipeParameterError, match="cannot split"):
        parse_esorex_kwargs("--filter='white")


@pytest.mark.container
def test_snapshot_matches_the_image(esorex_image):
    """The committed snapshot is what esorex in the image reports; rebuild both together."""
    from_image = recipe_catalog(esorex_image).to_snapshot()
    assert from_image == RecipeCatalog.from_snapshot(RECIPE_PARAMS_SNAPSHOT).to_snapshot(), (
        "config/recipe_params snapshot is stale: muse-airflow recipe-params --snapshot " + str(RECIPE_PARAMS_SNAPSHOT))

"""Plan steps that are Python functions rather than esorex recipes, run with a recipe's guarantees.

A step's ``recipe`` is ``python:<name>``; its inputs come as the same ``[[path, tag], ...]`` SOF as a
recipe's, it writes into a staging directory beside its product directory, and its products are
published by PRO.CATG only when every expected category is there (:mod:`muse_operators.products`).
Finished steps are recorded and reused like recipes (:mod:`muse_operators.step_record`); the "image" of
a Python step is the hash of the code that computes it.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import sky
from .errors import RecipeFailedError
from .products import ProductMap, categorise, check_expected, discard
from .sky import keep_molecular_lines, zero_continuum
from .step_record import fingerprint, hand_on_recorded, publish_recorded, reusable, step_lock

PREFIX = "python:"


def _only(inputs: dict[str, list[Path]], tag: str, step: str) -> Path:
    paths = inputs.get(tag, [])
    if len(paths) != 1:
        raise RecipeFailedError(f"{step} needs exactly one {tag}, got {len(paths)}")
    return paths[0]


def _zero(inputs: dict[str, list[Path]], staging: Path) -> None:
    source = _only(inputs, "SKY_CONTINUUM", "zero_sky_continuum")
    zero_continuum(source, staging / source.name)


def _molecular(inputs: dict[str, list[Path]], staging: Path) -> None:
    source = _only(inputs, "SKY_LINES", "keep_molecular_sky_lines")
    keep_molecular_lines(source, staging / source.name)


FUNCTIONS: dict[str, Callable[[dict[str, list[Path]], Path], None]] = {
    f"{PREFIX}zero_sky_continuum": _zero,
    f"{PREFIX}keep_molecular_sky_lines": _molecular,
}


def code_identity() -> str:
    """Stands in for an image ID: the hash of the modules that compute the Python steps' products."""
    digest = hashlib.sha256()
    for module_file in (__file__, sky.__file__):
        digest.update(Path(module_file).read_bytes())
    return f"python:{digest.hexdigest()[:16]}"


def is_python_step(recipe: str) -> bool:
    return recipe.startswith(PREFIX)


def run(recipe: str, sof: Sequence[Sequence[str]], output_dir: str, expected_products: Sequence[str] = (),
        parameters: dict[str, Any] | None = None, reuse: bool = True, run_recipe: bool = True) -> ProductMap:
    """Run one Python step (keyword arguments as EsorexOperator's) and return ``{PRO.CATG: [paths]}``."""
    if recipe not in FUNCTIONS:
        raise RecipeFailedError(f"unknown Python step {recipe!r}; known: {', '.join(sorted(FUNCTIONS))}")
    if not run_recipe:
        return hand_on_recorded(output_dir, recipe)
    print_ = fingerprint(recipe, sof, parameters or {}, code_identity())
    with step_lock(output_dir):  # another run at the same step: wait for it, then reuse its products
        finished = reusable(output_dir, print_) if reuse else None
        if finished:
            return finished
        inputs: dict[str, list[Path]] = {}
        for path, tag in sof:
            inputs.setdefault(tag, []).append(Path(path))
        out = Path(output_dir)
        staging = out.parent / f".{out.name}.staging-{secrets.token_hex(4)}"
        staging.mkdir(parents=True)
        try:
            FUNCTIONS[recipe](inputs, staging)
            found = categorise(staging.glob("*.fits"))
            check_expected(found, expected_products, recipe)
        except BaseException:
            discard(staging)
            raise
        return publish_recorded(staging, out, found, print_, recipe)

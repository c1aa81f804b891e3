"""What an esorex image carries: its pipeline version and the recipe parameter lists written at build time.

The parameter lists are copied out of a *created, never started* container (``docker create`` +
``get_archive``), so validating a parameter never runs a recipe. They are cached per image ID in memory
and on disk, because an image ID names its content exactly: a rebuilt image gets a new ID and new lists.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from .atomic_write import write_text_atomically
from .errors import ImageError
from .recipe_params import RecipeCatalog

DEFAULT_IMAGE = "muse-esorex:2.8.7-debian"
PARAMS_DIR_LABEL = "eso.muse.recipe-params-dir"
VERSION_LABEL = "eso.muse.pipeline-version"
BUILD_HINT = (
    "build it with: docker build --build-arg MUSE_SOURCE=debian --build-arg MUSE_PIPELINE_VERSION=2.8.7 "
    "-t muse-esorex:2.8.7-debian images/esorex   (see README, 'The esorex image')"
)


def configured_image() -> str:
    """The esorex image to run: ``$MUSE_ESOREX_IMAGE`` or the offline default."""
    return os.environ.get("MUSE_ESOREX_IMAGE", DEFAULT_IMAGE)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "muse-airflow" / "recipe-params"


def docker_client(docker_url: str | None = None) -> Any:
    import docker  # imported lazily: planning and tests of the core need no Docker SDK

    return docker.DockerClient(base_url=docker_url) if docker_url else docker.from_env()


def inspect_image(image: str, docker_url: str | None = None) -> dict[str, Any]:
    """``docker image inspect``; ImageError with the build command if the image is not present."""
    import docker.errors

    client = docker_client(docker_url)
    try:
        return client.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        raise ImageError(f"esorex image {image!r} is not present on this Docker engine; {BUILD_HINT}") from None


def recipe_catalog(image: str, docker_url: str | None = None) -> RecipeCatalog:
    """The recipe parameter lists of ``image``, read once per image ID."""
    info = inspect_image(image, docker_url)
    return _catalog_for_id(info["Id"], image, docker_url, (info["Config"].get("Labels") or {}).get(PARAMS_DIR_LABEL))


@lru_cache(maxsize=8)
def _catalog_for_id(image_id: str, image: str, docker_url: str | None, params_dir: str | None) -> RecipeCatalog:
    cached = _cache_dir() / f"{image_id.replace(':', '_')}.json"
    if cached.is_file():
        return RecipeCatalog.from_snapshot(cached)
    if not params_dir:
        raise ImageError(f"image {image!r} has no {PARAMS_DIR_LABEL} label: it was not built from images/esorex")
    entries, names = _read_param_files(image, docker_url, params_dir)
    catalog = RecipeCatalog.from_entries(entries, source=f"{image} ({image_id[:19]})", recipe_names=names)
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(cached, json.dumps(catalog.to_snapshot(), indent=1))
    return catalog


def _read_param_files(image: str, docker_url: str | None, params_dir: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(all parameter entries, every recipe name) from the image's parameter directory."""
    client = docker_client(docker_url)
    container = client.api.create_container(image=image, command=["--version"], network_disabled=True)
    try:
        chunks, _ = client.api.get_archive(container["Id"], params_dir)
        entries: list[dict[str, Any]] = []
        names: list[str] = []
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name.startswith("muse_") and name.endswith(".json"):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        entries.extend(json.loads(handle.read()))
                        names.append(name[: -len(".json")])
        if not names:
            raise ImageError(f"image {image!r}: no recipe parameter files in {params_dir}")
        return entries, names
    finally:
        client.api.remove_container(container["Id"], force=True)


def pipeline_version(image: str, docker_url: str | None = None) -> str:
    """The MUSE pipeline version the image declares (label set at build time and checked there)."""
    labels = inspect_image(image, docker_url)["Config"].get("Labels") or {}
    return labels.get(VERSION_LABEL, "unknown")

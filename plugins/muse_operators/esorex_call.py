"""One esorex call: the argument list, the container mounts, and the staging directory it writes into.

This is the domain half of :class:`muse_operators.operators.esorex.EsorexOperator`, free of Airflow
and Docker so that its rules can be tested directly:

* the command is an argument list, never a shell string;
* host paths are mounted at the same paths inside the container (SOF paths need no translation);
  inputs read-only, only the staging directory read-write;
* esorex writes into a *staging* directory beside the product directory; products are moved into the
  product directory only after the exit status and the products' PRO.CATG were checked, so a killed or
  failed run never leaves a file that looks finished.
"""
from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SofError
from .recipe_params import RecipeCatalog
from .sof import SofEntry, input_directories, render_for

# The image's unprivileged user (images/esorex/Dockerfile, ESOREX_UID/GID).
IMAGE_USER = (10001, 10001)
# Where esorex keeps its log while it runs (renamed to --log-file only when esorex exits by itself).
UNFINISHED_LOG_NAME = ".logfile"


@dataclass(frozen=True)
class Mount:
    """A bind mount, host path == container path."""

    path: str
    read_only: bool


@dataclass
class EsorexCall:
    """Everything needed to run one recipe once; built before any container exists."""

    recipe: str
    sof: list[SofEntry]
    output_dir: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    read_only_dirs: list[Path] = field(default_factory=list)
    log_level: str = "debug"
    staging_dir: Path | None = None

    @property
    def sof_name(self) -> str:
        return f"{self.recipe}.sof"

    @property
    def log_name(self) -> str:
        return f"{self.recipe}.log"

    @property
    def products_list_name(self) -> str:
        return f"{self.recipe}.products.json"

    def new_staging_dir(self) -> Path:
        """A fresh, hidden sibling of the product directory (same filesystem, so moves are atomic)."""
        token = secrets.token_hex(4)
        self.staging_dir = self.output_dir.parent / f".{self.output_dir.name}.staging-{token}"
        return self.staging_dir

    def argv(self, catalog: RecipeCatalog) -> list[str]:
        """The container command. Parameters are validated against the recipe's own list first."""
        if self.staging_dir is None:
            raise RuntimeError("call new_staging_dir() before argv()")
        staging = str(self.staging_dir)
        recipe_args = catalog.command_line(self.recipe, self.parameters)
        return [
            "esorex",
            f"--output-dir={staging}",
            f"--log-dir={staging}",
            f"--log-file={self.log_name}",
            f"--log-level={self.log_level}",
            f"--products-sof={staging}/{self.products_list_name}",
            "--suppress-prefix=true",
            "--check-sof-exist=true",
            self.recipe,
            *recipe_args,
            f"{staging}/{self.sof_name}",
        ]

    def mounts(self) -> list[Mount]:
        """Read-only mounts for every input directory, read-write only for the staging directory."""
        if self.staging_dir is None:
            raise RuntimeError("call new_staging_dir() before mounts()")
        read_only = set(input_directories(self.sof)) | {Path(p) for p in self.read_only_dirs}
        # A directory inside another read-only directory needs no mount of its own.
        collapsed = [d for d in sorted(read_only) if not any(d != o and o in d.parents for o in read_only)]
        return [Mount(str(d), True) for d in collapsed] + [Mount(str(self.staging_dir), False)]

    def check_readable(self, user: tuple[int, int]) -> None:
        """Fail early, naming the path and the fix, if the container user could not read an input.

        Inside the container only the mounted directory and what lies below it are visible, so the
        mount directory itself and every directory from it down to the file must be traversable.
        """
        mount_roots = [Path(m.path) for m in self.mounts() if m.read_only]
        for entry in self.sof:
            path = Path(entry.path)
            root = next((r for r in mount_roots if r == path.parent or r in path.parents), path.parent)
            chain = [root, *[p for p in reversed(path.parents) if root in p.parents]]
            for directory in chain:
                if not _permits(directory, user, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
                    raise SofError(
                        f"{directory} is not searchable by uid:gid {user[0]}:{user[1]}, the user the recipe "
                        f"runs as, so it cannot read {path} ({entry.tag}); make it readable "
                        f"(chmod o+rx {directory}) or run Airflow as the data's owner"
                    )
            if not _permits(path, user, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH):
                raise SofError(
                    f"{path} ({entry.tag}) is not readable by uid:gid {user[0]}:{user[1]}, the user the recipe "
                    f"runs as; make it readable (chmod o+r {path}) or run Airflow as the data's owner"
                )

    def prepare_staging(self, container_user: tuple[int, int]) -> Path:
        """Create the staging directory, write the SOF into it, hand it to the container user."""
        staging = self.staging_dir or self.new_staging_dir()
        staging.mkdir(parents=True, exist_ok=False)
        (staging / self.sof_name).write_text(render_for(self.recipe, self.sof))
        if os.geteuid() == 0 and container_user != (0, 0):
            os.chown(staging, *container_user)
            os.chown(staging / self.sof_name, *container_user)
        return staging

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the esorex log in the staging directory ('' if none was written).

        esorex writes its log to ``.logfile`` and renames it to ``--log-file`` only when it exits by itself:
        a recipe killed (time limit, out of memory, signal) leaves just ``.logfile``, which is then the log
        (measured: muse_bias killed after 5 s). The kept failure directory holds it under the same name.
        """
        if self.staging_dir is None:
            return ""
        for name in (self.log_name, UNFINISHED_LOG_NAME):
            log = self.staging_dir / name
            if log.is_file():
                text = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                return text if name == self.log_name else f"(esorex did not finish: its unfinished {name})\n{text}"
        return ""


def docker_run_argv(call: EsorexCall, image: str, catalog: RecipeCatalog, user: tuple[int, int],
                    threads: int) -> list[str]:
    """The ``docker run`` equivalent of what EsorexOperator starts: same argv, mounts, user, no network.

    For running a recipe outside Airflow (benchmarks comparing against the operator, recipe tests).
    """
    if call.staging_dir is None:
        raise RuntimeError("call new_staging_dir() before docker_run_argv()")
    argv = call.argv(catalog)
    docker = ["docker", "run", "--rm", "--network", "none", "--user", f"{user[0]}:{user[1]}",
              "-w", str(call.staging_dir), "-e", f"OMP_NUM_THREADS={threads}", "-e", "HOME=/tmp",
              "--entrypoint", argv[0]]
    for mount in call.mounts():
        # --mount, not -v: the path may hold colons (ESO's file names carry the time: MUSE.2023-12-23T08:35:05)
        if "," in mount.path or '"' in mount.path:
            raise SofError(f"{mount.path}: docker run --mount cannot take a path with ',' or '\"'; "
                           "rename the directory (EsorexOperator, which uses the Docker API, can)")
        docker += ["--mount", f"type=bind,source={mount.path},target={mount.path}"
                   + (",readonly" if mount.read_only else "")]
    return [*docker, image, *argv[1:]]


def _permits(path: Path, user: tuple[int, int], owner_bit: int, group_bit: int, other_bit: int) -> bool:
    """Whether ``user`` has a permission on ``path`` by its mode bits (as the kernel decides, sans ACLs)."""
    info = path.stat()
    if user[0] == 0:
        return True
    if info.st_uid == user[0]:
        return bool(info.st_mode & owner_bit)
    if info.st_gid == user[1]:
        return bool(info.st_mode & group_bit)
    return bool(info.st_mode & other_bit)


def container_user() -> tuple[int, int]:
    """Run recipes as the calling user so products belong to them; never as root.

    Root callers (CI, the compose workers' default) get the image's unprivileged user instead.
    """
    uid, gid = os.geteuid(), os.getegid()
    return IMAGE_USER if uid == 0 else (uid, gid)


def build_call(
    recipe: str,
    sof: Iterable[Any],
    output_dir: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    read_only_dirs: Sequence[str | os.PathLike[str]] = (),
) -> EsorexCall:
    """Construct an :class:`EsorexCall` from the plain JSON values that Airflow passes around."""
    from .sof import coerce_entries

    return EsorexCall(
        recipe=recipe,
        sof=coerce_entries(sof),
        output_dir=Path(output_dir).absolute(),
        parameters=dict(parameters or {}),
        read_only_dirs=[Path(p).absolute() for p in read_only_dirs],
    )

"""EsorexOperator: run one ESO MUSE recipe with esorex in a container, as one Airflow task.

The operator is a thin shell over :mod:`muse_operators.esorex_call` (what to run and mount) and
:mod:`muse_operators.products` (what counts as finished). DockerOperator does the container work; this
class adds what a reduction needs on top of it:

* recipe parameters are validated against the image's own parameter list *before* a container starts;
* raw and earlier products are mounted read-only, only a staging directory is writable, no network,
  the container never runs as root;
* the task fails when esorex fails *or* when an expected PRO.CATG is missing, and the task log then
  holds the tail of the esorex log; partial products are deleted, never published;
* the XCom return value is ``{PRO.CATG: [paths]}`` of the published products;
* a call identical to one that already finished (same recipe, parameters, image and input files) hands
  on the recorded products without starting a container (:mod:`muse_operators.step_record`);
  ``run_recipe=False`` (the config's ``execute: false``) hands on whatever products the step's directory
  holds from an earlier run, and skips the task if there are none;
* ``use_existing_sof=True`` (``create_sof: false``) runs the SOF the user edited in the product
  directory instead of the planned one;
* ``timeout_minutes`` stops a recipe that runs too long (a damaged input can make one loop forever: it
  would hold a worker slot for good) and fails the task the same way, with the esorex log tail.
"""
from __future__ import annotations

import copy
import os
import shlex
import threading
import time
from collections.abc import Sequence
from typing import Any

from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from docker.errors import APIError as DockerAPIError
from docker.types import Mount

from ..errors import MuseAirflowError
from ..failures import classify_failure, esorex_logged_an_error
from ..esorex_call import build_call, container_user
from ..esorex_image import configured_image, inspect_image, recipe_catalog
from ..products import ProductMap, categorise, check_expected, discard, listed_products
from ..sof import read_sof
from ..step_record import NothingToHandOn, fingerprint, hand_on_recorded, publish_recorded, reusable, step_lock


# Every recipe container carries this label (value: the recipe), so operators and tests can find them.
CONTAINER_LABEL = "org.muse-airflow.recipe"


def default_omp_threads() -> int:
    """OpenMP threads per recipe: ``$MUSE_OMP_NUM_THREADS`` or every core of the worker."""
    return int(os.environ.get("MUSE_OMP_NUM_THREADS") or os.cpu_count() or 1)


class EsorexOperator(DockerOperator):
    """Run ``esorex <recipe> [--param=value ...] <sof>`` in the esorex image.

    :param recipe: recipe name, e.g. ``muse_bias``.
    :param sof: input frames as ``[path, tag]`` pairs or ``{"path", "tag"}`` mappings (absolute paths).
    :param output_dir: where finished products are published (created if needed).
    :param parameters: recipe parameters by name (without ``--``); checked against the recipe.
    :param expected_products: PRO.CATG values the run must produce, else the task fails.
    :param read_only_dirs: further directories to mount read-only (inputs' own directories always are).
    :param omp_num_threads: ``OMP_NUM_THREADS`` in the container (the ``n_CPU`` setting).
    :param image: esorex image; default ``$MUSE_ESOREX_IMAGE`` or ``muse-esorex:2.8.7-debian``.
    :param reuse: hand on the products of an identical finished call instead of running again.
    :param run_recipe: False: never run, hand on the step's recorded products (skip if there are none).
    :param use_existing_sof: run ``<output_dir>/<recipe>.sof`` as the user left it, not ``sof``.
    :param timeout_minutes: stop the container after this many minutes and fail (None: no limit).
    """

    template_fields: Sequence[str] = (
        *DockerOperator.template_fields,
        "recipe",
        "sof",
        "output_dir",
        "parameters",
        "expected_products",
        "read_only_dirs",
        "omp_num_threads",
        "reuse",
        "run_recipe",
        "use_existing_sof",
        "timeout_minutes",
    )
    ui_color = "#d9ecf9"

    def __init__(
        self,
        *,
        recipe: str,
        sof: Sequence[Any] | str,
        output_dir: str,
        parameters: dict[str, Any] | str | None = None,
        expected_products: Sequence[str] | str = (),
        read_only_dirs: Sequence[str] | str = (),
        omp_num_threads: int | str | None = None,
        image: str | None = None,
        log_tail_lines: int = 40,
        reuse: bool = True,
        run_recipe: bool = True,
        use_existing_sof: bool = False,
        timeout_minutes: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("auto_remove", "force")
        super().__init__(
            image=image or configured_image(),
            network_mode="none",
            mount_tmp_dir=False,
            **kwargs,
        )
        self.recipe = recipe
        self.sof = sof
        self.output_dir = output_dir
        self.parameters = parameters or {}
        # Kept as given: they may be templates, rendered only just before execute().
        self.expected_products = expected_products
        self.read_only_dirs = read_only_dirs
        self.omp_num_threads = omp_num_threads
        self.log_tail_lines = log_tail_lines
        self.reuse = reuse
        self.run_recipe = run_recipe
        self.use_existing_sof = use_existing_sof
        self.timeout_minutes = timeout_minutes

    # The XCom is the product map {PRO.CATG: [paths]}, not DockerOperator's log lines.
    def execute(self, context: Any) -> ProductMap:  # type: ignore[override]
        expected = _string_list(self.expected_products, "expected_products")
        read_only_dirs = _string_list(self.read_only_dirs, "read_only_dirs")
        if self.parameters is None:  # an emptied form field: no parameters
            self.parameters = {}
        if not isinstance(self.parameters, dict):
            raise AirflowFailException(f"parameters must be a mapping of recipe parameters, got {self.parameters!r}")
        if not _flag(self.run_recipe):
            return self._hand_on_recorded()
        docker_url = _engine_url(self.docker_url)
        try:
            sof = read_sof(f"{self.output_dir}/{self.recipe}.sof") if _flag(self.use_existing_sof) else self.sof
            call = build_call(self.recipe, sof, self.output_dir, self.parameters, read_only_dirs)
            catalog = recipe_catalog(self.image, docker_url)
            catalog.command_line(self.recipe, self.parameters)  # bad parameters fail before anything is made
            print_ = fingerprint(self.recipe, [[e.path, e.tag] for e in call.sof], self.parameters,
                                 inspect_image(self.image, docker_url)["Id"])
        except MuseAirflowError as exc:
            raise AirflowFailException(str(exc)) from None
        # Another run at the same step (OBs of one night sharing its calibrations) holds the lock until it
        # has published; this one then finds its record and reuses the products.
        with step_lock(call.output_dir):
            self._clear_leftovers(call.output_dir)
            return self._reuse_or_run(context, call, catalog, print_, expected)

    def _clear_leftovers(self, output_dir: Any) -> None:
        """Remove what a dead earlier attempt at this step left: its container and its staging directory.

        Runs under the step lock, which every attempt holds for its container's whole life and which a killed
        worker releases: a container labelled for this output directory that exists now has lost its
        owner (a SIGKILLed worker leaves its recipe running on, unowned, beside the re-run). It is killed
        and removed. A ``.NAME.staging-*`` directory now belongs to nobody either: it becomes
        ``.NAME.failed-*`` with its partial FITS deleted and its log kept, as after any failure.
        """
        client = self._new_client()
        label = f"{CONTAINER_LABEL}.output-dir={output_dir}"
        for container in client.containers(all=True, filters={"label": label}):
            self.log.warning("removing container %s (%s) of an earlier attempt at %s whose worker is gone",
                             container["Id"][:12], container.get("State", "?"), output_dir)
            try:
                client.remove_container(container["Id"], force=True)
            except DockerAPIError as exc:  # it ended (and was auto-removed) in the meantime
                self.log.info("container %s already gone: %s", container["Id"][:12], exc)
        for staging in sorted(output_dir.parent.glob(f".{output_dir.name}.staging-*")):
            kept = discard(staging)
            self.log.warning("staging directory %s of an earlier attempt left behind: partial products deleted, "
                             "log kept in %s", staging, kept)

    def _new_client(self) -> Any:
        """A Docker API client of its own, from a copy of the operator's DockerHook (connection, TLS, API version).

        The task's own client may be busy streaming the container's log in another thread.
        """
        hook = copy.copy(self.hook)  # the task's hook settings ...
        vars(hook).pop("api_client", None)  # ... without its cached client: this copy connects anew
        return hook.api_client

    def _reuse_or_run(self, context: Any, call: Any, catalog: Any, print_: str, expected: list[str]) -> ProductMap:
        """Hand on an identical finished call's products, or run the recipe and publish (under the step lock)."""
        try:
            finished = reusable(call.output_dir, print_) if _flag(self.reuse) else None
            if finished:
                self.log.info("%s already finished in %s with the same inputs, parameters and image: reusing "
                              "its products (set global.reuse_products to false to force a re-run)",
                              self.recipe, call.output_dir)
                return finished
            call.new_staging_dir()
            argv = call.argv(catalog)  # validates the parameters: no container has started yet
            user = container_user()
            for entry in call.sof:
                entry.check()
            call.check_readable(user)
            staging = call.prepare_staging(user)  # writes the SOF
        except MuseAirflowError as exc:
            raise AirflowFailException(str(exc)) from None

        threads = self.omp_num_threads or default_omp_threads()
        if not str(threads).isdigit() or int(threads) < 1:
            raise AirflowFailException(f"omp_num_threads must be a positive integer, got {threads!r}")
        timeout = _timeout_seconds(self.timeout_minutes)
        self.entrypoint = argv[:1]
        self.command = argv[1:]
        self.user = f"{user[0]}:{user[1]}"
        self.labels = {CONTAINER_LABEL: self.recipe, f"{CONTAINER_LABEL}.output-dir": str(call.output_dir)}
        self.working_dir = str(staging)  # esorex creates products in its current directory first
        self.environment = {**self.environment, "OMP_NUM_THREADS": str(threads), "HOME": "/tmp"}
        self.mounts = [Mount(target=m.path, source=m.path, type="bind", read_only=m.read_only) for m in call.mounts()]
        self.log.info("running %s", shlex.join(argv))
        self.log.info("mounts: %s", ", ".join(f"{m.path} ({'ro' if m.read_only else 'rw'})" for m in call.mounts()))

        expired = threading.Event()
        watchdog = threading.Timer(timeout, self._stop_container, (expired,)) if timeout else None
        try:
            if watchdog:
                watchdog.daemon = True
                watchdog.start()
            super().execute(context)
        except Exception as exc:
            tail = call.log_tail(self.log_tail_lines)
            kept = discard(staging)
            reason = (f"stopped after {self.timeout_minutes} min (global.recipe_timeout_minutes; raise it if the "
                      "recipe needs longer)" if expired.is_set() else f"{exc.__class__.__name__}: {exc}")
            failure = classify_failure(exc.__class__.__name__, str(exc), timed_out=expired.is_set(),
                                       esorex_error_logged=esorex_logged_an_error(tail))
            verdict = (f"{failure.kind} fault: {failure.reason}; Airflow retries it if the task has retries left"
                       if failure.retry else f"{failure.kind} error: {failure.reason}; not retried (the same "
                       "input fails again)")
            self._report_failure(f"{self.recipe} failed ({reason}); {verdict}", tail, kept)
            error = AirflowException if failure.retry else AirflowFailException
            raise error(f"{self.recipe} failed ({reason}); {verdict}; esorex log kept in {kept}\n{tail}") from None
        except BaseException:
            discard(staging)  # killed or timed out: nothing half-written may remain in place
            raise
        finally:
            if watchdog:
                watchdog.cancel()

        found = categorise(listed_products(staging, call.products_list_name))
        try:
            check_expected(found, expected, self.recipe)
        except MuseAirflowError as exc:
            tail = call.log_tail(self.log_tail_lines)
            kept = discard(staging)
            self._report_failure(str(exc), tail, kept)
            raise AirflowFailException(f"{exc}; esorex log kept in {kept}\n{tail}") from None
        products = publish_recorded(staging, call.output_dir, found, print_, self.recipe)
        for category, paths in sorted(products.items()):
            self.log.info("%s: %s", category, ", ".join(paths))
        return products

    def _stop_container(self, expired: threading.Event) -> None:
        """Kill the recipe's container (watchdog thread): esorex then ends non-zero and execute() reports it.

        A client of its own (:meth:`_new_client`): the task's client is busy streaming the container's log in
        the main thread.
        """
        expired.set()
        container = None
        for _ in range(60):  # a timeout shorter than the container's creation (seconds, in tests): wait for it
            container = getattr(self, "container", None)
            if container:
                break
            time.sleep(0.5)
        else:
            return
        self.log.error("%s still running after %s min: stopping its container", self.recipe, self.timeout_minutes)
        try:
            self._new_client().kill(container["Id"])
        except DockerAPIError as exc:  # it ended (and was removed) in the meantime
            self.log.info("container %s already gone: %s", container["Id"][:12], exc)

    def _hand_on_recorded(self) -> ProductMap:
        """``execute: false``: the products of the step's last finished run, or skip (nothing to hand on)."""
        try:
            products = hand_on_recorded(self.output_dir, self.recipe)
        except NothingToHandOn as exc:
            raise AirflowSkipException(str(exc)) from None
        self.log.info("%s is switched off (execute: false): handing on the products of its last run in %s",
                      self.recipe, self.output_dir)
        return products

    def _report_failure(self, headline: str, tail: str, kept: Any) -> None:
        self.log.error("%s", headline)
        self.log.error("last %d lines of the esorex log (%s):\n%s", self.log_tail_lines, kept,
                       tail or "(no log written)")


def _timeout_seconds(minutes: Any) -> float | None:
    """``timeout_minutes`` as seconds (None: no limit), or a clear error for anything but a positive number."""
    if minutes is None or minutes == "None":
        return None
    try:
        seconds = float(minutes) * 60.0
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise AirflowFailException(f"timeout_minutes must be a positive number of minutes, got {minutes!r}")
    return seconds


def _flag(value: Any) -> bool:
    """A rendered boolean argument (templating may hand over 'True'/'False' strings)."""
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def _engine_url(docker_url: str | list[str] | None) -> str | None:
    """The engine URL for the image and parameter look-ups (None: docker's own default, the local socket).

    DockerOperator also accepts a list of URLs (tried in turn); the look-ups use the first.
    """
    url = docker_url[0] if isinstance(docker_url, list) and docker_url else docker_url
    if not isinstance(url, str) or url.startswith("unix://"):
        return None
    return url


def _string_list(value: Any, name: str) -> list[str]:
    """A rendered list-of-strings argument, or a clear error if templating left something else."""
    if value is None:
        return []
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise AirflowFailException(f"{name} must be a list of strings, got {value!r}")
    return list(value)

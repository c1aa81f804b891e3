"""Which recipe failures are retried (infrastructure) and which fail at once (data): muse_operators.failures.

The real paths (a container killed from outside, retried and published; esorex's own error, not retried)
are in test_esorex_operator.py; this checks each branch of the rule and the retry settings.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from muse_operators.failures import DATA, INFRASTRUCTURE, classify_failure, esorex_logged_an_error, exit_status
from muse_operators.failures import recipe_retry_settings

FAILED = "Docker container failed: {{'StatusCode': {}, 'Error': None}}"


@pytest.mark.parametrize(("exc_type", "message", "timed_out", "logged", "kind", "says"), [
    ("DockerContainerFailedException", FAILED.format(255), False, True, DATA, "logged its error"),
    ("DockerContainerFailedException", FAILED.format(137), True, False, DATA, "time limit"),
    ("DockerContainerFailedException", FAILED.format(137), False, False, INFRASTRUCTURE, "SIGKILL"),
    ("DockerContainerFailedException", FAILED.format(143), False, True, INFRASTRUCTURE, "SIGTERM"),
    ("DockerContainerFailedException", FAILED.format(125), False, False, INFRASTRUCTURE, "could not run"),
    ("DockerContainerFailedException", FAILED.format(2), False, False, INFRASTRUCTURE, "without an esorex error"),
    ("ConnectionError", "('Connection aborted.', FileNotFoundError(2))", False, False, INFRASTRUCTURE,
     "was it restarted?"),
    ("APIError", "500 Server Error", False, False, INFRASTRUCTURE, "Docker engine failed"),
    ("ValueError", "something of ours", False, False, DATA, "ValueError: something of ours"),
])
def test_each_kind_of_failure_is_classified(exc_type, message, timed_out, logged, kind, says):
    failure = classify_failure(exc_type, message, timed_out=timed_out, esorex_error_logged=logged)
    assert failure.kind == kind and says in failure.reason
    assert failure.retry is (kind == INFRASTRUCTURE)


def test_exit_status_and_esorex_error_are_read_from_what_docker_and_esorex_print():
    assert exit_status(FAILED.format(137)) == 137 and exit_status("no status here") is None
    assert esorex_logged_an_error("12:00:01 [ ERROR ] muse_bias: frame is dead")
    assert not esorex_logged_an_error("12:00:01 [ INFO  ] all fine")


def test_retry_settings_default_and_from_the_environment():
    assert recipe_retry_settings({}) == {"retries": 2, "retry_delay": timedelta(seconds=60),
                                         "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=10)}
    settings = recipe_retry_settings({"MUSE_RECIPE_RETRIES": "0", "MUSE_RECIPE_RETRY_DELAY_S": "5"})
    assert settings["retries"] == 0 and settings["retry_delay"] == timedelta(seconds=5)
    with pytest.raises(ValueError, match="MUSE_RECIPE_RETRIES = 'two': give a whole number >= 0"):
        recipe_retry_settings({"MUSE_RECIPE_RETRIES": "two"})

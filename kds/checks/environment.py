"""Checks of the process environment: Python dependencies, configuration and a running server."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from kds.checks.runner import CheckResult, Context, failed, passed, skipped, warned

if TYPE_CHECKING:
    from packaging.requirements import Requirement

# ----------------------------------------------------------------------------------------------
# python-dependencies

IMPORT_TIMEOUT_SECONDS = 30.0


def _distribution_modules() -> dict[str, list[str]]:
    """Normalised distribution name → the top-level modules it installs."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    modules: dict[str, list[str]] = {}
    for module, distributions in packages_distributions().items():
        if module.startswith("_") or not module.isidentifier():
            continue
        for distribution in distributions:
            modules.setdefault(canonicalize_name(distribution), []).append(module)
    return modules


def runtime_requirements(package: str = "kds") -> list[str]:
    """The Requires-Dist lines of ``package`` that apply without extras."""
    from importlib.metadata import requires

    return list(requires(package) or [])


def _applies(requirement: Requirement, extra: str) -> bool:
    """Top level: the lines without an extra marker; for ``pkg[extra]``: the lines that extra adds."""
    marker = requirement.marker
    if not extra:
        return marker is None or marker.evaluate({"extra": ""})
    return marker is not None and marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""})


def check_requirements(lines: Iterable[str]) -> CheckResult:
    """Every requirement (and the requirements of its extras) installed at an allowed version and importable."""
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    modules = _distribution_modules()
    problems: list[str] = []
    fixes: list[str] = []
    seen: list[str] = []
    pending = [(Requirement(line), "") for line in lines]
    while pending:
        requirement, via = pending.pop(0)
        if not _applies(requirement, via):
            continue
        name = requirement.name
        try:
            installed = version(name)
        except PackageNotFoundError:
            problems.append(f"{name} is not installed (needs {requirement.specifier or 'any version'})")
            fixes.append(f"'{requirement}'")
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{name} {installed} does not satisfy {requirement.specifier}")
            fixes.append(f"'{name}{requirement.specifier}'")
            continue
        for module in modules.get(canonicalize_name(name), [])[:1]:
            try:
                importlib.import_module(module)
            except Exception as exc:
                problems.append(f"{name} {installed} is installed but `import {module}` fails ({type(exc).__name__})")
                fixes.append(f"--force-reinstall '{name}{requirement.specifier}'")
        seen.append(f"{name} {installed}")
        for extra in sorted(requirement.extras):
            pending.extend((Requirement(line), extra) for line in requires(name) or [])
    if problems:
        return failed("; ".join(problems), f"pip install {' '.join(fixes)} (or rebuild the image from the lock file)")
    return passed(f"{len(seen)} runtime dependencies import at supported versions")


def check_python_dependencies(context: Context) -> CheckResult:
    from importlib.metadata import PackageNotFoundError

    try:
        lines = runtime_requirements()
    except PackageNotFoundError:
        return warned(
            "kds is not installed as a package, so its declared dependencies cannot be read",
            "install kds with pip (pip install . or the wheel) instead of running it from a source tree",
        )
    return check_requirements(lines)


# ----------------------------------------------------------------------------------------------
# configuration

SHUTDOWN_MARGIN_SECONDS = 5.0


def check_configuration(context: Context) -> CheckResult:
    from kds.errors import ConfigurationError
    from kds.settings import load_settings

    try:
        settings = load_settings(**context.settings_overrides)
    except ConfigurationError as error:
        return failed(
            f"a setting does not parse: {error.detail}",
            "correct that value (durations: 5, 2.5, 500ms, 5s, 1m); every KDS_* variable is listed in "
            "docs/configuration.md",
        )
    needed = settings.shutdown_delay + settings.drain_timeout + SHUTDOWN_MARGIN_SECONDS
    grace = settings.termination_grace_period
    timing = (
        f"shutdown delay {settings.shutdown_delay:g} s + drain timeout {settings.drain_timeout:g} s "
        f"+ {SHUTDOWN_MARGIN_SECONDS:g} s margin = {needed:g} s"
    )
    if needed > grace:
        return failed(
            f"{timing} exceeds the termination grace period of {grace:g} s: Kubernetes would kill pods mid-drain",
            f"set terminationGracePeriodSeconds (and --grace-period / KDS_TERMINATION_GRACE_PERIOD) to at least "
            f"{needed:g}, or lower KDS_SHUTDOWN_DELAY / KDS_DRAIN_TIMEOUT",
        )
    if settings.auth_tokens_file is not None and not settings.auth_tokens_file.is_file():
        return failed(
            f"KDS_AUTH_TOKENS_FILE={settings.auth_tokens_file} does not exist or is not a file",
            "mount the token Secret at that path, or unset KDS_AUTH_TOKENS_FILE to run without authentication",
        )
    return passed(f"all KDS_* settings parse; {timing} fits the grace period of {grace:g} s")


# ----------------------------------------------------------------------------------------------
# server

METRIC_NAME = "http_requests_total"


def _get(url: str, *, timeout: float, token: str | None) -> tuple[int, str]:
    """(status, body) of a GET; HTTP error statuses are returned, network errors raised."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "*/*"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(1 << 22).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        body = error.read(4096).decode("utf-8", "replace")
        error.close()
        return error.code, body


def check_server(context: Context) -> CheckResult:
    import urllib.error

    if not context.server_url:
        return skipped("skipped: no --server-url given")
    base = context.server_url.rstrip("/")
    unreachable_fix = (
        "start the server (kds serve) or fix --server-url; from CI, use the Service URL reachable from the runner"
    )
    try:
        status, body = _get(f"{base}/health/ready", timeout=context.timeout, token=context.server_token)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or type(error).__name__
        return failed(f"{base}/health/ready is unreachable: {reason}", unreachable_fix)
    if status != 200:
        return failed(
            f"{base}/health/ready answered {status} {_short(body)}",
            "look at the server log: not_ready means it cannot reach the database, shutting_down that it is stopping",
        )
    try:
        status, body = _get(f"{base}/metrics", timeout=context.timeout, token=context.server_token)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or type(error).__name__
        return failed(f"{base}/metrics is unreachable: {reason}", unreachable_fix)
    if status in (401, 403):
        return failed(
            f"{base}/metrics answered {status}: authentication is on",
            "pass --server-token (or KDS_SERVER_TOKEN) with a token that has the metrics:read scope",
        )
    if status != 200:
        return failed(f"{base}/metrics answered {status}", "check that the URL points at kds serve")
    if METRIC_NAME not in body:
        return failed(
            f"{base}/metrics does not expose {METRIC_NAME}",
            "check that the URL points at kds serve (not another service or a proxy page)",
        )
    return passed(f"{base} is ready and exposes {METRIC_NAME}")


def _short(body: str, limit: int = 200) -> str:
    text = " ".join(body.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

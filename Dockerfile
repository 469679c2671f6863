# syntax=docker/dockerfile:1
#
# kds container image: Red Hat UBI 9, two stages.
#   builder  ubi9/python-311 (compilers, pip): builds a wheel of kds and of every runtime
#            dependency, pinned by requirements.lock, into /wheels; the `embedded` extra is not requested, so no PostgreSQL.
#   runtime  ubi9/ubi-minimal + the python3.11 RPM only: a venv in /opt/kds filled from /wheels
#            with --no-index (no network, no compiler, no build tools in the final image).
#
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t kds:0.1.0 .
#   docker run --rm -p 8080:8080 -e KDS_DATABASE_URL=postgresql://... kds:0.1.0

ARG UBI_TAG=9.6

FROM registry.access.redhat.com/ubi9/python-311:${UBI_TAG} AS builder
# The s2i image runs as 1001 in /opt/app-root/src; pip writes build/ and *.egg-info next to the source.
WORKDIR /opt/app-root/src
COPY --chown=1001:0 pyproject.toml README.md requirements.lock ./
COPY --chown=1001:0 kds ./kds
# Every dependency at the version pinned in requirements.lock (the set CI tests), never a newer release.
RUN pip wheel --no-cache-dir --wheel-dir /opt/app-root/wheels -c requirements.lock .

FROM registry.access.redhat.com/ubi9/ubi-minimal:${UBI_TAG} AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown

LABEL org.opencontainers.image.title="kds" \
      org.opencontainers.image.description="kds serve: REST gateway, validate-infra and migrations for the Kubernetes remediation platform's incident database" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      name="kds" \
      version="${VERSION}" \
      summary="kds data-storage toolkit" \
      description="kds serve: REST gateway, validate-infra and migrations for the incident database" \
      io.k8s.display-name="kds" \
      io.k8s.description="kds serve: REST gateway over the incident database" \
      io.openshift.expose-services="8080:http"

# python3.11 pulls in the pip/setuptools wheels that `python3.11 -m venv` (ensurepip) needs;
# versions come from the pinned UBI release above, so individual RPM versions are not pinned.
# hadolint ignore=DL3041
RUN microdnf install -y --nodocs --setopt=install_weak_deps=0 python3.11 \
    && microdnf clean all \
    && rm -rf /var/cache/yum

# Install only the wheels built above (bind-mounted: they never become a layer of this image),
# then drop pip (setuptools stays: sanic declares it as a runtime requirement).
# Group 0 owns what must be writable, for OpenShift's arbitrary UIDs.
RUN --mount=type=bind,from=builder,source=/opt/app-root/wheels,target=/wheels \
    python3.11 -m venv /opt/kds \
    && /opt/kds/bin/python -m pip install --no-cache-dir --no-index --find-links=/wheels kds \
    && /opt/kds/bin/python -m pip uninstall --yes pip \
    && mkdir -p /var/lib/kds/metrics \
    && chown -R 1001:0 /var/lib/kds \
    && chmod -R g=u /var/lib/kds

ENV PATH=/opt/kds/bin:${PATH} \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/kds/metrics \
    KDS_HOST=0.0.0.0 \
    KDS_PORT=8080

WORKDIR /opt/kds
USER 1001
EXPOSE 8080

# No curl in the image: the venv's python asks /health/live (which never touches the database).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('KDS_PORT', '8080') + '/health/live', timeout=3)"]

# Exec form: kds is PID 1 and receives SIGTERM itself (graceful shutdown, SPEC 5.5).
STOPSIGNAL SIGTERM
ENTRYPOINT ["kds"]
CMD ["serve"]

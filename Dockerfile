# Loket's image: one image for every process of the Procfile (compose picks the command).
# The base is pinned to a full version; pin it to its digest as well when building for production
# (`docker buildx imagetools inspect python:3.11.7-slim-bookworm` prints it) by passing
# --build-arg PYTHON_IMAGE=python:3.11.7-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# Build stage: the runtime dependencies, exactly as the lock names them, into a virtualenv.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/loket
COPY requirements.txt /tmp/requirements.txt
RUN /opt/loket/bin/pip install --require-hashes --no-deps -r /tmp/requirements.txt

# Runtime stage: the virtualenv and Loket's own packages only (no tests, benchmark or dev tools),
# owned by root and run as an unprivileged user, so a compromised process cannot rewrite its code.
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 loket \
    && useradd --system --uid 10001 --gid loket --home-dir /app --no-create-home --shell /usr/sbin/nologin loket
COPY --from=build /opt/loket /opt/loket
ENV PATH=/opt/loket/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOST=0.0.0.0 PORT=8000
WORKDIR /app
COPY alembic.ini schema.sql procedures.sql Procfile ./
COPY core core
COPY db db
COPY domain domain
COPY jobs jobs
COPY ops ops
COPY provider provider
COPY sim sim
COPY web web
COPY workers workers
USER loket
EXPOSE 8000
# The web's liveness; the other processes of this image serve no /health, and compose turns the
# check off for them.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=2)"]
CMD ["python", "-m", "web.serve"]

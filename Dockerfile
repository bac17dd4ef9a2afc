# One image, two entry points: the web app under gunicorn (default) and `moderation worker`.
# Build: docker build -t comment-moderation .
# Both stages name the same Debian release: the venv built in the first runs in the second,
# and a bare `3.11-slim` moves to the next release (its C libraries) when Debian's does.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml requirements.lock requirements-vectors.txt README.md ./
COPY service ./service
COPY worker ./worker
COPY models ./models
RUN pip install --no-cache-dir --disable-pip-version-check pip==26.3 \
    && pip install --no-cache-dir --disable-pip-version-check -c requirements.lock . \
    && pip install --no-cache-dir --disable-pip-version-check --no-deps --require-hashes -r requirements-vectors.txt

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 moderation \
    && mkdir -p /var/lib/moderation/models \
    && chown -R moderation /var/lib/moderation
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODERATION_ENV=production \
    MODERATION_DATA_DIR=/var/lib/moderation \
    MODEL_DIR=/var/lib/moderation/models \
    PORT=8000
USER moderation
WORKDIR /var/lib/moderation
EXPOSE 8000
# The check asks the web app: run a worker container with --no-healthcheck (compose.yaml
# turns it off for the worker and init services).
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"
# Migrations and the first model are an explicit step: `moderation init` (see compose.yaml).
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-2} --access-logfile - --config python:service.gunicorn_settings --no-control-socket 'service:create_app()'"]

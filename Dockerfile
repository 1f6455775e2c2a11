# shardlens: posterior-based movie recommendations (CPU image).
# Build: docker build -t shardlens .   Run: docker run -p 8000:8000 -v shardlens:/var/lib/shardlens shardlens
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SHARDLENS_HOST=0.0.0.0 \
    SHARDLENS_PORT=8000 \
    SHARDLENS_STORE_DIR=/var/lib/shardlens/store \
    SHARDLENS_DATA_DIR=/var/lib/shardlens/data \
    SHARDLENS_CACHE_DIR=/var/lib/shardlens/cache \
    MPLCONFIGDIR=/var/lib/shardlens/cache/matplotlib

WORKDIR /srv/shardlens
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY app ./app
COPY training ./training
COPY storage ./storage
COPY common ./common
COPY scripts ./scripts
# Every dependency at the version requirements.lock pins (the versions CI tested); the
# service runs as an unprivileged user that owns only its data volume.
RUN pip install --no-cache-dir -c requirements.lock . \
    && groupadd --system --gid 10001 shardlens \
    && useradd --system --uid 10001 --gid shardlens --no-create-home \
       --home-dir /var/lib/shardlens --shell /usr/sbin/nologin shardlens \
    && mkdir -p /var/lib/shardlens/store /var/lib/shardlens/data /var/lib/shardlens/cache \
    && chown -R shardlens:shardlens /var/lib/shardlens

USER 10001:10001
EXPOSE 8000
VOLUME ["/var/lib/shardlens"]
# Liveness: /healthz answers as soon as the port is bound, also during first-start training
# (readiness is /readyz: 503 until a posterior is loaded).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SHARDLENS_PORT', '8000') + '/healthz', timeout=4).status != 200)"]
# Binds the port at once; on an empty store it queues a training job on the embedded
# synthetic data (`--preset default`) and loads its posterior when it is published.
CMD ["shardlens-serve", "--train-if-empty"]

# shardlens: posterior-based movie recommendations (CPU image).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SHARDLENS_STORE_DIR=/var/lib/shardlens/store \
    SHARDLENS_DATA_DIR=/var/lib/shardlens/data \
    SHARDLENS_CACHE_DIR=/var/lib/shardlens/cache

WORKDIR /srv/shardlens
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
COPY storage ./storage
COPY common ./common
COPY scripts ./scripts
RUN pip install . && mkdir -p /var/lib/shardlens/store /var/lib/shardlens/data

EXPOSE 8000
VOLUME ["/var/lib/shardlens"]
# Trains a small posterior on the embedded synthetic data if the store is empty, then serves.
CMD ["shardlens-serve", "--host", "0.0.0.0", "--port", "8000", "--train-if-empty"]

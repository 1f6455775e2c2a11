"""`/metrics` in the Prometheus text format.

Request counts and latency histograms per route (its template, e.g. /recommend/{user_id}),
method and status come from `prometheus-fastapi-instrumentator`; the served model (version,
load time), the precomputed-array cache and the job states are read at scrape time by a
`prometheus_client` collector. Each app gets its own registry, so several apps in one
process (tests) never share or clash.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator, metrics

from storage.job_record import STATUSES

__all__ = ["ServingCollector", "install_metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, float("inf"))


class ServingCollector(Collector):
    """The served version, its load, the cache of precomputed arrays and the jobs."""

    def __init__(self, app: FastAPI):
        self.app = app

    def collect(self) -> Iterator[Any]:
        state = self.app.state
        holder = getattr(state, "holder", None)
        served = holder.current if holder is not None else None
        info = InfoMetricFamily("shardlens_model", "The served posterior version")
        loaded = GaugeMetricFamily(
            "shardlens_model_loaded", "1 when a posterior version is served, else 0"
        )
        loaded.add_metric([], 1.0 if served is not None else 0.0)
        load = GaugeMetricFamily(
            "shardlens_model_load_seconds", "Seconds the served version took to load"
        )
        loaded_at = GaugeMetricFamily(
            "shardlens_model_loaded_timestamp_seconds", "When the served version was swapped in"
        )
        if served is not None:
            info.add_metric([], {"version": served.name, "convergence": served.convergence.status})
            load.add_metric([], served.load_seconds)
            loaded_at.add_metric([], served.loaded_at.timestamp())
        yield from (info, loaded, load, loaded_at)
        cache = CounterMetricFamily(
            "shardlens_picks_cache",
            "Precomputed arrays (picks, mean probabilities, movie-major samples) at version "
            "loads: read from the picks cache (hit) or computed (miss)",
            labels=["result"],
        )
        if holder is not None:
            cache.add_metric(["hit"], float(holder.cache_hits))
            cache.add_metric(["miss"], float(holder.cache_misses))
        yield cache
        jobs = GaugeMetricFamily("shardlens_jobs", "Training jobs by status", labels=["status"])
        store = getattr(state, "job_store", None)
        if store is not None:
            for status in STATUSES:
                try:
                    jobs.add_metric([status], float(store.list(limit=1, status=status).total))
                except Exception:  # an unreadable job database: report no figure for it
                    continue
        yield jobs


def install_metrics(app: FastAPI) -> CollectorRegistry:
    """Instrument every request and expose `GET /metrics` (not in the OpenAPI schema)."""
    registry = CollectorRegistry()
    registry.register(ServingCollector(app))
    instrumentator = Instrumentator(
        should_group_status_codes=False,  # per status: 200, 304, 404, 422, ...
        excluded_handlers=["/metrics"],
        registry=registry,
    )
    instrumentator.add(metrics.requests(registry=registry))
    instrumentator.add(
        metrics.latency(
            should_include_handler=True,
            should_include_method=True,
            should_include_status=True,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
    )
    instrumentator.instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
    return registry

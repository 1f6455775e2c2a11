"""Server settings: environment variables prefixed `SHARDLENS_`, or an optional `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.jobs.launchers.slurm_config import SlurmSettings
from storage.layout import DEFAULT_DATA, DEFAULT_STORE

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
ServePolicy = Literal["latest", "latest-converged"]  # storage.convergence.SERVE_POLICIES


class Settings(BaseSettings):
    """Everything the server reads from its environment (one object per process)."""

    model_config = SettingsConfigDict(
        env_prefix="SHARDLENS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_nested_delimiter="__",  # SHARDLENS_SLURM__PARTITION=gpu
    )

    store_dir: Path = Field(default=DEFAULT_STORE, description="posterior store to serve from")
    poll_interval_s: float = Field(
        default=5.0, ge=0, description="seconds between checks of the store's `latest`; 0 disables"
    )
    serve_policy: ServePolicy = Field(
        default="latest-converged",
        description="which version to serve: `latest`, or `latest-converged` (the newest "
        "version that passed the convergence check at publish; the newest version, with a "
        "warning, when none did)",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="bearer token for /admin/* and /jobs; those routes are refused without one",
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA,
        description="data root: named datasets live here, and job data paths must be inside it",
    )
    run_jobs: bool = Field(
        default=True, description="run queued training jobs in this server (one runner per store)"
    )
    max_concurrent_jobs: int = Field(
        default=1, ge=1, le=16, description="training jobs run at once"
    )
    job_cancel_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="seconds between SIGTERM and SIGKILL when a job is cancelled",
    )
    job_poll_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="seconds between the job runner's checks"
    )
    job_program: list[str] = Field(
        default_factory=list,
        description="the training command a job runs, before its flags (JSON list); "
        "empty: this Python's `-m training train`",
    )
    job_backend: Literal["local", "slurm"] = Field(
        default="local",
        description="how new jobs run: `local` (a child process of the server) or `slurm` "
        "(a batch job submitted with sbatch)",
    )
    slurm: SlurmSettings = Field(
        default_factory=SlurmSettings,
        description="the Slurm backend: default resources, allowed options, commands "
        "(SHARDLENS_SLURM__<FIELD>)",
    )
    host: str = Field(default="127.0.0.1", description="address to bind (`--host`)")
    port: int = Field(default=8000, ge=0, le=65535, description="port to bind (`--port`)")
    workers: int = Field(
        default=1, ge=1, le=64, description="uvicorn worker processes (`--workers`)"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="allowed CORS origins; empty keeps CORS closed"
    )
    max_body_bytes: int = Field(
        default=65536, ge=0, description="request bodies above this get 413"
    )
    batch_max_users: int = Field(
        default=1000, ge=1, le=10000, description="most user ids in one POST /recommend/batch"
    )
    log_level: LogLevel = Field(default="info", description="uvicorn log level (`--log-level`)")
    shutdown_grace_s: int = Field(
        default=30,
        ge=1,
        description="on SIGTERM/SIGINT, seconds in-flight requests get to finish before "
        "they are cancelled",
    )
    cache_dir: Path | None = Field(
        default=Path("var/cache"),
        description="where precomputed picks are cached for other workers and restarts; "
        "empty disables the cache",
    )
    precompute_chunk_users: int = Field(
        default=256, ge=1, description="users per chunk when precomputing picks (bounds memory)"
    )
    genre_picks_max_mb: float = Field(
        default=512,
        ge=0,
        description="memory (MiB) allowed for precomputing every user's picks within each "
        "genre (users x genres x samples x 2 bytes; 217 MiB at ml-1m with 1,000 samples); "
        "a larger catalogue, or 0, computes genre-filtered picks per request instead",
    )

    @field_validator("cache_dir", mode="before")
    @classmethod
    def _empty_disables(cls, value: object) -> object:
        return None if value == "" else value


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()

"""The body of `POST /jobs`: a preset plus validated overrides (unknown fields are refused)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.jobs.launchers.slurm_config import SlurmResources
from common.jobspec import Preset


class JobConfig(BaseModel):
    """A training job: a preset, a data source, and optional overrides of the preset."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # JSON types as the schema says: `"seed": false` or `"4"` are refused
        json_schema_extra={
            "examples": [
                {"preset": "smoke"},
                {"preset": "default", "data": "synthetic", "num_chains": 4, "seed": 7},
                {"preset": "cpu", "data": "ml-1m", "devices": 2},
                {"preset": "cpu", "data": "uploads/ml-1m.zip"},
                {"preset": "cpu", "data": "ml-25m", "min_rating": 4.0, "min_user_watches": 5},
                {"preset": "cpu", "data": "logs/views.csv", "items": "logs/items.csv"},
                {"preset": "smoke", "force_publish": True},
                {
                    "preset": "reference",
                    "data": "ml-1m",
                    "slurm": {"nodes": 2, "tasks_per_node": 4, "gpus_per_node": 4},
                },
            ]
        },
    )

    preset: Preset = Field(
        "default", description="base configuration (see `python -m training train --help`)"
    )
    data: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="`synthetic[:users=N,movies=M,dim=D,seed=S]`, a MovieLens release "
        "(`ml-1m`, `ml-25m`, ...), `tfds:movielens/1m-ratings`, or a path inside the data root "
        "(SHARDLENS_DATA_DIR) to a MovieLens zip/folder or an interactions .csv/.tsv/.parquet; "
        "omitted: the preset's source",
    )
    items: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="items file (item, title, genres) for an interactions file: a path inside "
        "the data root",
    )
    min_rating: float | None = Field(
        None, ge=-1e9, le=1e9, description="a watch is a rating >= this (default: any rating)"
    )
    min_user_watches: int | None = Field(
        None, ge=1, le=1_000_000, description="k-core: users need this many watches"
    )
    min_item_watches: int | None = Field(
        None, ge=1, le=1_000_000, description="k-core: items need this many watchers"
    )
    user_column: str | None = Field(None, min_length=1, max_length=200, description="user column")
    item_column: str | None = Field(None, min_length=1, max_length=200, description="item column")
    rating_column: str | None = Field(
        None, min_length=1, max_length=200, description="rating column"
    )
    timestamp_column: str | None = Field(
        None, min_length=1, max_length=200, description="timestamp column"
    )
    id_type: Literal["auto", "str", "int"] | None = Field(
        None, description="ids of an interactions file: auto (default), str or int"
    )
    num_chains: int | None = Field(None, ge=1, le=64, description="HMC chains")
    num_leapfrog_steps: int | None = Field(None, ge=1, le=1000, description="per HMC step")
    num_burnin_steps: int | None = Field(None, ge=0, le=1_000_000, description="burn-in steps")
    num_results: int | None = Field(None, ge=1, le=1_000_000, description="kept draws per chain")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed")
    latent_dim: int | None = Field(None, ge=1, le=512, description="embedding dimension")
    devices: int | None = Field(None, ge=1, le=1024, description="devices on the mesh")
    reduction: Literal["psum", "ordered"] | None = Field(
        None,
        description="cross-device sums: psum (fastest) or ordered (the same samples however "
        "the devices are split over processes)",
    )
    force_publish: bool | None = Field(
        None,
        description="publish even a run whose chains did not move (flagged as unconverged); "
        "without it such a run fails with the reason and what to change",
    )
    slurm: SlurmResources | None = Field(
        None,
        description="Slurm resources of this job, over the server's defaults (only with "
        "SHARDLENS_JOB_BACKEND=slurm)",
    )

    def to_record(self, *, data: str | None, items: str | None = None) -> dict[str, Any]:
        """The config stored with the job (the data source and items file as
        validated/resolved)."""
        values = self.model_dump(exclude_none=True)
        if data is not None:
            values["data"] = data
        if items is not None:
            values["items"] = items
        return values

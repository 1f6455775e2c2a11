"""The body of `POST /jobs`: a preset plus validated overrides (unknown fields are refused)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Preset = Literal["smoke", "default", "cpu", "reference"]


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
                {"preset": "smoke", "force_publish": True},
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
        description="`synthetic[:users=N,movies=M,dim=D,seed=S]`, `ml-1m`, `ml-100k`, "
        "`tfds:movielens/1m-ratings`, or a path inside the data root (SHARDLENS_DATA_DIR); "
        "omitted: the preset's source",
    )
    num_chains: int | None = Field(None, ge=1, le=64, description="HMC chains")
    num_leapfrog_steps: int | None = Field(None, ge=1, le=1000, description="per HMC step")
    num_burnin_steps: int | None = Field(None, ge=0, le=1_000_000, description="burn-in steps")
    num_results: int | None = Field(None, ge=1, le=1_000_000, description="kept draws per chain")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed")
    latent_dim: int | None = Field(None, ge=1, le=512, description="embedding dimension")
    devices: int | None = Field(None, ge=1, le=1024, description="devices on the mesh")
    force_publish: bool | None = Field(
        None,
        description="publish even a run whose chains did not move (flagged as unconverged); "
        "without it such a run fails with the reason and what to change",
    )

    def to_record(self, *, data: str | None) -> dict[str, Any]:
        """The config stored with the job (the data source as validated/resolved)."""
        values = self.model_dump(exclude_none=True)
        if data is not None:
            values["data"] = data
        return values

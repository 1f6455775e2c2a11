"""`StoreSettings`: the `SHARDLENS_*` variables the store reads (or a `.env` file in the
working folder), through pydantic-settings as the server and `python -m training` read
theirs. Values stay raw text here; `storage.layout` and `storage.retention` interpret them.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["COMMAND_ENV_CONFIG", "StoreSettings"]

# How every command outside the server reads its settings: `SHARDLENS_*` variables, else
# the working folder's `.env`; an empty variable counts as unset.
COMMAND_ENV_CONFIG = SettingsConfigDict(
    env_prefix="SHARDLENS_",
    env_file=".env",
    env_file_encoding="utf-8",
    env_ignore_empty=True,
    extra="ignore",
    frozen=True,
)


class StoreSettings(BaseSettings):
    """`SHARDLENS_STORE_DIR` and `SHARDLENS_KEEP_VERSIONS` (empty = unset)."""

    model_config = COMMAND_ENV_CONFIG

    store_dir: str | None = None
    keep_versions: str | None = None

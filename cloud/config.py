"""Typed configuration of the cloud service, read once in the composition root."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, PostgresDsn
from pydantic_settings import BaseSettings, SettingsConfigDict


class CloudSettings(BaseSettings):
    """Settings from ``COLDTRACE_CLOUD_*`` environment variables or keyword arguments."""

    model_config = SettingsConfigDict(env_prefix="COLDTRACE_CLOUD_", extra="forbid")

    database_url: PostgresDsn
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    pool_min_size: Annotated[int, Field(ge=1)] = 1
    pool_max_size: Annotated[int, Field(ge=1)] = 10
    pool_timeout: timedelta = timedelta(seconds=10)
    max_batch_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    run_processor: bool = True
    run_scheduler: bool = True

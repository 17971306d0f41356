"""One place for settings, read from the environment (and `.env`)."""

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABELLOOP_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/labelloop.db",
        validation_alias=AliasChoices("DATABASE_URL", "LABELLOOP_DATABASE_URL"),
    )
    data_dir: Path = Path("./var")
    # Unset: a key is generated once and kept in data_dir, so sessions survive restarts.
    secret_key: SecretStr | None = None
    # Set when served behind HTTPS so the session cookie gets the Secure flag.
    https_only: bool = False
    # Addresses of the proxies whose X-Forwarded-For names the client (uvicorn's forwarded_allow_ips:
    # comma-separated addresses or networks, or "*"). Failed logins are counted by the client's
    # address: a proxy not listed here makes every user look like the proxy.
    trusted_proxies: str = "127.0.0.1"
    session_max_age_seconds: int = 14 * 24 * 3600
    lease_seconds: int = 600
    max_upload_bytes: int = 512 * 1024 * 1024
    # JSON and form bodies other than file uploads
    max_body_bytes: int = 1024 * 1024
    worker_poll_seconds: float = 0.5
    # A running job whose heartbeat is older than this is taken to have lost its worker.
    job_stale_seconds: int = 120
    job_max_attempts: int = 3
    # argon2id's cost per password hash: argon2-cffi's defaults (RFC 9106's second recommended
    # profile, 3 passes over 64 MiB; about 0.15 s here). The test suite lowers them for the
    # thousands of throwaway users it creates (tests/conftest.py); each hash records its own
    # cost, so a hash made under other settings still verifies.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65536, ge=8)

    def resolved_secret_key(self) -> str:
        """The signing key: configured, or generated once and stored beside the data."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()

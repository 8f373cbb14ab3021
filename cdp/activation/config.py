"""The `activation:` section of cdp.yaml, validated by our own models.

`Settings.activation` is a free dict; this module turns it into typed destinations. Secrets
never live here: a destination names the environment variable that holds its token
(`token_env: META_ACCESS_TOKEN`), read only when a real (non dry-run) sync needs it.

Absent section = one `file` destination exporting every segment as CSV under
`{data_dir}/exports/`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from cdp.config import ConfigError, Settings
from cdp.errors import CdpError

Purpose = Literal["ads", "email", "sms", "none"]

META_KEYS = ("EMAIL", "PHONE", "FN", "LN", "GEN", "DOBY", "DOBM", "DOBD", "CT", "ZIP",
             "COUNTRY", "EXTERN_ID")
# Fields a webhook / file / Postgres destination can carry (see payload.generic_keys).
GENERIC_FIELD_NAMES = ("customer_id", "email_sha256", "phone_sha256", "email", "phone",
                       "first_name", "last_name", "birth_date", "gender", "city", "postcode",
                       "country", "since")
DEFAULT_FIELDS = ["customer_id", "email_sha256", "phone_sha256"]
META_MAX_BATCH = 10_000
GOOGLE_MAX_BATCH = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrySettings(_Strict):
    """Per request: `attempts` tries; the n-th wait is `backoff_base * 2**n` (half of it
    jittered), capped at `backoff_max`; a 429/503 `Retry-After` is honoured up to
    `max_retry_after` seconds."""

    attempts: int = Field(5, ge=1, le=20)
    backoff_base: float = Field(1.0, ge=0)
    backoff_max: float = Field(60.0, ge=0)
    max_retry_after: float = Field(300.0, ge=0)
    timeout: float = Field(30.0, gt=0)


class _Destination(_Strict):
    # None = every segment in segment_membership (ad platforms: every mapped segment).
    segments: list[str] | None = None
    retry: RetrySettings | None = None  # default: activation.retry

    _name: str = PrivateAttr("")

    @property
    def name(self) -> str:
        return self._name

    def mapped_segments(self) -> list[str] | None:
        """Segments the destination can address (ad platforms map segment -> audience)."""
        return None

    @property
    def replace_on_change(self) -> bool:
        """True when rows are identified by their hashed keys (audiences), so a changed
        identifier means: remove the old keys, add the new ones. Keyed destinations (by
        customer_id) just upsert."""
        return False

    @model_validator(mode="after")
    def _segments_are_mapped(self) -> _Destination:
        mapped = self.mapped_segments()
        if mapped is not None and self.segments is not None:
            missing = sorted(set(self.segments) - set(mapped))
            if missing:
                raise ValueError(f"segments {missing} have no audience / user list mapped")
        return self


class FileDestination(_Destination):
    type: Literal["file"]
    format: Literal["csv", "parquet"] = "csv"
    path: str = "{data_dir}/exports"
    fields: list[Literal[GENERIC_FIELD_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(DEFAULT_FIELDS))
    purpose: Purpose = "none"
    batch_size: int = Field(1_000_000, ge=1)


class MetaDestination(_Destination):
    """Meta Custom Audiences: POST / DELETE {base_url}/{audience_id}/users."""

    type: Literal["meta"]
    base_url: str = "https://graph.facebook.com/v21.0"
    token_env: str = "META_ACCESS_TOKEN"
    audiences: dict[str, str] = Field(min_length=1)  # segment -> custom audience id
    schema_: list[Literal[META_KEYS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(META_KEYS), alias="schema", min_length=1)
    purpose: Literal["ads"] = "ads"
    batch_size: int = Field(META_MAX_BATCH, ge=1, le=META_MAX_BATCH)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def mapped_segments(self) -> list[str]:
        return list(self.audiences)

    @property
    def replace_on_change(self) -> bool:
        return True


class GoogleAdsDestination(_Destination):
    """Google Ads Customer Match through OfflineUserDataJobService (REST)."""

    type: Literal["google_ads"]
    base_url: str = "https://googleads.googleapis.com/v21"
    customer_id: str = Field(pattern=r"^\d{10}$")
    login_customer_id: str | None = Field(None, pattern=r"^\d{10}$")
    token_env: str = "GOOGLE_ADS_ACCESS_TOKEN"
    developer_token_env: str = "GOOGLE_ADS_DEVELOPER_TOKEN"
    user_lists: dict[str, str] = Field(min_length=1)  # segment -> user list id
    identifiers: list[Literal["email", "phone", "address"]] = Field(
        default_factory=lambda: ["email", "phone", "address"], min_length=1)
    # Which of our consent columns grants Google's two consent fields.
    ad_user_data_from: Literal["ads_opt_in", "email_opt_in", "sms_opt_in"] = "ads_opt_in"
    ad_personalization_from: Literal["ads_opt_in", "email_opt_in", "sms_opt_in"] = "ads_opt_in"
    purpose: Literal["ads"] = "ads"
    batch_size: int = Field(GOOGLE_MAX_BATCH, ge=1, le=GOOGLE_MAX_BATCH)

    def mapped_segments(self) -> list[str]:
        return list(self.user_lists)

    @property
    def replace_on_change(self) -> bool:
        return True


class TikTokDestination(_Destination):
    """TikTok customer file: CSV with Email_SHA256, Phone_SHA256 headers, written to `folder`
    and, when `upload` is true, uploaded and applied to the mapped custom audience."""

    type: Literal["tiktok"]
    folder: str | None = "{data_dir}/exports/tiktok"
    upload: bool = False
    base_url: str = "https://business-api.tiktok.com/open_api/v1.3"
    token_env: str = "TIKTOK_ACCESS_TOKEN"
    advertiser_id: str | None = None
    audiences: dict[str, str] = Field(default_factory=dict)  # segment -> custom audience id
    purpose: Literal["ads"] = "ads"
    batch_size: int = Field(500_000, ge=1)

    def mapped_segments(self) -> list[str] | None:
        return list(self.audiences) if self.upload else None

    @property
    def replace_on_change(self) -> bool:
        return True

    @model_validator(mode="after")
    def _upload_needs_targets(self) -> TikTokDestination:
        if self.upload and (not self.advertiser_id or not self.audiences):
            raise ValueError("upload: true needs advertiser_id and audiences")
        if not self.upload and not self.folder:
            raise ValueError("set a folder, or upload: true (or both)")
        return self


class WebhookDestination(_Destination):
    """JSON batches POSTed to any URL; optional HMAC-SHA256 signature with a secret."""

    type: Literal["webhook"]
    url: str | None = None
    url_env: str | None = None  # when the URL itself is a secret
    secret_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # static, non-secret headers
    header_envs: dict[str, str] = Field(default_factory=dict)  # header -> env var (tokens)
    fields: list[Literal[GENERIC_FIELD_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(DEFAULT_FIELDS))
    purpose: Purpose  # required: say which consent the receiver's use needs
    batch_size: int = Field(1_000, ge=1)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookDestination:
        if bool(self.url) == bool(self.url_env):
            raise ValueError("set exactly one of url, url_env")
        return self


class PostgresDestination(_Destination):
    """Upsert into a table of an operational database; `mirror` deletes rows that left."""

    type: Literal["postgres"]
    dsn_env: str = "CDP_ACTIVATION_POSTGRES_DSN"
    schema_name: str = Field("public", alias="schema")
    table: str = "cdp_segment_members"
    mode: Literal["mirror", "upsert"] = "mirror"
    fields: list[Literal[GENERIC_FIELD_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(DEFAULT_FIELDS))
    purpose: Purpose
    batch_size: int = Field(5_000, ge=1)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Destination = Annotated[
    FileDestination | MetaDestination | GoogleAdsDestination | TikTokDestination
    | WebhookDestination | PostgresDestination,
    Field(discriminator="type"),
]


class ActivationConfig(_Strict):
    destinations: dict[str, Destination] = Field(
        default_factory=lambda: {"file": FileDestination(type="file")})
    retry: RetrySettings = Field(default_factory=RetrySettings)
    sample_size: int = Field(5, ge=0, le=100)  # dry run: rows shown per segment/destination

    @model_validator(mode="after")
    def _name_destinations(self) -> ActivationConfig:
        for name, destination in self.destinations.items():
            destination._name = name
            if destination.retry is None:
                destination.retry = self.retry
        return self


def load_activation_config(settings: Settings) -> ActivationConfig:
    """Validate `settings.activation`; a bad key is a ConfigError naming it."""
    try:
        return ActivationConfig.model_validate(settings.activation or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"activation.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid activation config: {problems}") from None


def expand_path(template: str, settings: Settings) -> Path:
    """`{data_dir}` expanded; relative paths are taken from the config file's folder."""
    raw = template.replace("{data_dir}", str(settings.resolved_paths.data_dir))
    path = Path(raw)
    return path if path.is_absolute() else (settings.root / path).resolve()


def secret(env_name: str, destination: str, what: str = "token") -> str:
    """The value of an environment variable a destination needs; a clear error if unset.

    The error names the variable, never a value.
    """
    value = os.environ.get(env_name, "")
    if not value:
        raise CdpError(f"destination '{destination}': environment variable {env_name} "
                       f"({what}) is not set")
    return value


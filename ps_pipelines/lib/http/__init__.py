"""The HTTP client core shared by every source connector (no orchestration imports here)."""

from ps_pipelines.lib.http.auth import (
    NO_AUTH,
    BasicAuth,
    OAuth2ClientCredentials,
    OAuth2RefreshToken,
    StaticBearer,
)
from ps_pipelines.lib.http.client import (
    ApiClient,
    ClientStats,
    ErrorClassifier,
    QuotaExhausted,
    Throttled,
    TokenBucket,
    retry_after_seconds,
    send_deadline,
)
from ps_pipelines.lib.http.errors import (
    ApiError,
    AuthError,
    MalformedResponseError,
    NotSentError,
    QuotaExhaustedError,
    RetryExhaustedError,
    ValidationError,
    parse_error_detail,
    redact_url,
)
from ps_pipelines.lib.http.paging import change_keyset_pages, follow_next_url, offset_pages, page_number_pages
from ps_pipelines.lib.http.strategy import AuthStrategy

__all__ = [
    "NO_AUTH",
    "ApiClient",
    "ApiError",
    "AuthError",
    "AuthStrategy",
    "BasicAuth",
    "ClientStats",
    "ErrorClassifier",
    "MalformedResponseError",
    "NotSentError",
    "OAuth2ClientCredentials",
    "OAuth2RefreshToken",
    "QuotaExhausted",
    "QuotaExhaustedError",
    "RetryExhaustedError",
    "StaticBearer",
    "Throttled",
    "TokenBucket",
    "ValidationError",
    "change_keyset_pages",
    "follow_next_url",
    "offset_pages",
    "page_number_pages",
    "parse_error_detail",
    "redact_url",
    "retry_after_seconds",
    "send_deadline",
]

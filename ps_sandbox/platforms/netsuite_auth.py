"""How the sandbox NetSuite account lets an integration in: OAuth 2.0 client credentials with a
signed JWT client assertion (M2M), or Token-Based Authentication (OAuth 1.0a).

A real account accepts no client id + secret pair for machine-to-machine logins: the client
credentials grant authenticates the client with a JWT signed by the private key of a certificate
mapped in Setup > Integration > Manage Authentication > OAuth 2.0 Client Credentials (M2M) Setup,
and TBA signs every request with the consumer and token secrets. The sandbox checks both the
way the documents below describe, against its own account configuration (``AccountLogins``).

Time claims (``iat``/``exp``, ``oauth_timestamp``) are checked against the wall clock, not the
sandbox's business clock (which the control API may move to simulate days passing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import jwt
from cryptography.hazmat.primitives import serialization

from ps_sandbox.http import Request
from ps_sandbox.platforms.common import same_secret

# NetSuite help, "POST Request to the Token Endpoint and the Access Token Response"
# (section_162755359851): grant_type is always client_credentials, client_assertion_type always
# this URN (RFC 7523), client_assertion the signed JWT.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# NetSuite help, "The Request Token Structure" (section_162790605110): alg is PS256, PS384, PS512,
# ES256, ES384 or ES512. RS256 is still accepted by accounts set up before PSS was required.
ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "RS256")
# ... scope is restlets, rest_webservices, suite_analytics or several, separated by commas.
SCOPES = frozenset({"restlets", "rest_webservices", "suite_analytics"})
# ... exp must be less than 60 minutes after iat.
MAX_ASSERTION_SECONDS = 3600
CLOCK_SKEW_SECONDS = 300
# TBA: NetSuite help, "The Signature for Web Services and RESTlets" (section_1534941088): HMAC-SHA256
# (HMAC-SHA1 support ended with 2023.1); RFC 5849 section 3.4 for the base string, 3.6 for encoding.
TBA_SIGNATURE_METHOD = "HMAC-SHA256"
NONCE_MEMORY = 10_000


class LoginRefused(Exception):
    """A login the account refuses; ``error`` is the OAuth error code answered (RFC 6749 5.2)."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason  # for logs and tests; never echoes a secret


@dataclass(frozen=True)
class CertificateMapping:
    """One row of the OAuth 2.0 Client Credentials (M2M) Setup: certificate id -> application."""

    certificate_id: str
    client_id: str
    public_key_pem: str


@dataclass
class AccountLogins:
    """The account's login configuration: M2M certificate mappings and TBA consumers/tokens."""

    account_id: str
    certificates: dict[str, CertificateMapping] = field(default_factory=dict)
    consumers: dict[str, str] = field(default_factory=dict)  # consumer key -> consumer secret
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token id -> (secret, consumer key)
    _nonces: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Mapping[str, str]]) -> AccountLogins:
        """The account as the sandbox config describes it: the ``netsuite`` (M2M) and
        ``netsuite_tba`` credential sets. The M2M mapping registers the public part of the
        configured key pair, as uploading the certificate does."""
        m2m = credentials.get("netsuite", {})
        tba = credentials.get("netsuite_tba", {})
        account = cls(account_id=m2m.get("account_id") or tba.get("account_id") or "")
        if m2m.get("certificate_id") and m2m.get("private_key_pem"):
            account.certificates[m2m["certificate_id"]] = CertificateMapping(
                m2m["certificate_id"], m2m["client_id"], public_key_of(m2m["private_key_pem"]))
        if tba.get("consumer_key"):
            account.consumers[tba["consumer_key"]] = tba["consumer_secret"]
            account.tokens[tba["token_id"]] = (tba["token_secret"], tba["consumer_key"])
        return account

    @cached_property
    def realm(self) -> str:
        # The realm is the account id as NetSuite spells it in TBA headers (e.g. 1234567_SB1).
        return self.account_id.upper().replace("-", "_")

    # -- OAuth 2.0 client credentials (M2M) ---------------------------------------------------
    def check_client_assertion(self, form: Mapping[str, str], token_url: str) -> str:
        """Validate a client-credentials token request; returns the granted scope or raises."""
        if form.get("grant_type") != "client_credentials":
            raise LoginRefused("unsupported_grant_type", "grant_type must be client_credentials")
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            # A bare client id + secret is no M2M login in NetSuite.
            raise LoginRefused("invalid_request", "client_assertion_type/client_assertion missing")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise LoginRefused("invalid_request", f"malformed client assertion: {exc}") from None
        mapping = self.certificates.get(str(header.get("kid")))
        if mapping is None:
            raise LoginRefused("invalid_grant", "unknown certificate id (kid)")
        if header.get("alg") not in ALGORITHMS:
            raise LoginRefused("invalid_grant", f"unsupported algorithm {header.get('alg')!r}")
        try:
            claims = jwt.decode(
                assertion, mapping.public_key_pem, algorithms=[header["alg"]], audience=token_url,
                issuer=mapping.client_id, leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "scope"]},
            )
        except jwt.PyJWTError as exc:
            raise LoginRefused("invalid_grant", f"client assertion refused: {type(exc).__name__}") from None
        if int(claims["exp"]) - int(claims["iat"]) > MAX_ASSERTION_SECONDS:
            raise LoginRefused("invalid_grant", "exp is more than 60 minutes after iat")
        if int(claims["iat"]) > time.time() + CLOCK_SKEW_SECONDS:
            raise LoginRefused("invalid_grant", "iat is in the future")
        scope = claims["scope"]
        scopes = {part.strip() for part in (scope if isinstance(scope, list) else str(scope).replace(" ", ",")
                                             .split(",")) if part.strip()}
        if not scopes or not scopes <= SCOPES:
            raise LoginRefused("invalid_scope", f"unknown scope {sorted(scopes - SCOPES)}")
        return ",".join(sorted(scopes))

    # -- Token-Based Authentication (OAuth 1.0a) ----------------------------------------------
    def check_tba(self, request: Request) -> None:
        """Verify a request's ``Authorization: OAuth ...`` header (RFC 5849); raises if refused."""
        params = oauth_header_params(request.header("authorization"))
        if params is None:
            raise LoginRefused("invalid_request", "no OAuth authorization header")
        if params.get("realm") != self.realm:
            raise LoginRefused("invalid_request", "realm is not this account's id")
        if params.get("oauth_signature_method") != TBA_SIGNATURE_METHOD:
            raise LoginRefused("invalid_request", "oauth_signature_method must be HMAC-SHA256")
        if params.get("oauth_version", "1.0") != "1.0":
            raise LoginRefused("invalid_request", "oauth_version must be 1.0")
        consumer_secret = self.consumers.get(params.get("oauth_consumer_key", ""))
        token = self.tokens.get(params.get("oauth_token", ""))
        if consumer_secret is None or token is None or token[1] != params.get("oauth_consumer_key"):
            raise LoginRefused("invalid_client", "unknown consumer key or token")
        try:
            stamp = int(params.get("oauth_timestamp", ""))
        except ValueError:
            raise LoginRefused("invalid_request", "oauth_timestamp is not a number") from None
        if abs(time.time() - stamp) > CLOCK_SKEW_SECONDS:
            raise LoginRefused("invalid_request", "oauth_timestamp too far from now")
        expected = tba_signature(request, params, consumer_secret, token[0])
        if not same_secret(params.get("oauth_signature"), expected):
            raise LoginRefused("invalid_client", "signature mismatch")
        self._use_nonce(f"{params['oauth_token']}:{params.get('oauth_nonce', '')}:{stamp}")

    def _use_nonce(self, key: str) -> None:
        with self._lock:  # RFC 5849 3.3: a nonce/timestamp pair is good once
            if key in self._nonces:
                raise LoginRefused("invalid_request", "nonce already used")
            self._nonces[key] = None
            while len(self._nonces) > NONCE_MEMORY:
                self._nonces.popitem(last=False)


def public_key_of(private_key_pem: str) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def oauth_header_params(header: str) -> dict[str, str] | None:
    """The parameters of an ``Authorization: OAuth k="v", ...`` header (RFC 5849 3.5.1), decoded."""
    if header[:6].lower() != "oauth ":
        return None
    params: dict[str, str] = {}
    for part in header[6:].split(","):
        name, _, value = part.strip().partition("=")
        if not name:
            continue
        params[unquote(name.strip())] = unquote(value.strip().strip('"'))
    return params


def rfc5849_encode(text: str) -> str:
    # RFC 5849 3.6: unreserved characters stay, everything else is %XX (upper-case hex).
    return quote(text, safe="~-._")


def tba_signature(request: Request, oauth: Mapping[str, Any], consumer_secret: str, token_secret: str) -> str:
    """The HMAC-SHA256 signature of ``request`` per RFC 5849 3.4 (base string) and 3.4.2 (key)."""
    pairs = [(k, v) for k, v in parse_qsl(request.raw_query, keep_blank_values=True)]
    if "application/x-www-form-urlencoded" in request.header("content-type").lower() and request.body:
        pairs += parse_qsl(request.body.decode(), keep_blank_values=True)  # 3.4.1.3.1: form bodies only
    # The realm and the signature itself are not signed (3.4.1.3.1).
    pairs += [(k, str(v)) for k, v in oauth.items() if k not in ("realm", "oauth_signature")]
    normalized = "&".join(f"{k}={v}" for k, v in sorted((rfc5849_encode(k), rfc5849_encode(v)) for k, v in pairs))
    host = request.header("host", "localhost").lower()
    scheme = "https" if request.header("x-forwarded-proto") == "https" else "http"
    if (scheme, host.rsplit(":", 1)[-1]) in (("http", "80"), ("https", "443")):
        host = host.rsplit(":", 1)[0]  # 3.4.1.2: default ports are left out
    base_uri = f"{scheme}://{host}{request.path}"
    base = "&".join((request.method.upper(), rfc5849_encode(base_uri), rfc5849_encode(normalized)))
    key = f"{rfc5849_encode(consumer_secret)}&{rfc5849_encode(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()

"""Authentication by signature: an OAuth 2.0 JWT client assertion (RFC 7523) and OAuth 1.0a
request signing (RFC 5849), as NetSuite's machine-to-machine logins need them.

- ``OAuth2ClientAssertion``: the client credentials grant with the client authenticated by a
  short-lived JWT signed with a certificate's private key (NetSuite OAuth 2.0 M2M). A fresh
  assertion is signed for every token fetch.
- ``OAuth1Signature``: every request signed with consumer + token secrets (NetSuite Token-Based
  Authentication), through ``requests-oauthlib``; nothing to refresh, so a 401 is final.

Neither keeps a secret where it could be printed: ``repr`` shows ids only, and errors name the
problem, never the key.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from ps_pipelines.lib.http.auth import _OAuth2Token

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def _load_private_key(pem: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("the private key is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("the private key must be RSA or EC")
    return key


def default_algorithm(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """PS256 for RSA keys, ES256/384/512 by curve for EC keys (NetSuite's supported algorithms)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _EC_ALGORITHMS.get(key.curve.name, "ES256")
    return "PS256"


class OAuth2ClientAssertion(_OAuth2Token):
    """Client credentials grant authenticated by a signed JWT (``client_assertion``).

    Claims per NetSuite help, "The Request Token Structure" (section_162790605110): header
    ``typ`` JWT, ``alg`` (PS256 by default), ``kid`` = the certificate id of the M2M mapping;
    payload ``iss`` = client id, ``scope`` (comma separated), ``aud`` = the token endpoint URL,
    ``iat`` and ``exp`` (less than 60 minutes apart).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        certificate_id: str,
        private_key_pem: str,
        *,
        scopes: Sequence[str] = ("rest_webservices",),
        algorithm: str | None = None,
        lifetime_seconds: int = 300,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(token_url, session)
        if not 0 < lifetime_seconds < 3600:
            raise ValueError("the assertion lifetime must be under 60 minutes")
        self.client_id = client_id
        self.certificate_id = certificate_id
        self._key = _load_private_key(private_key_pem)
        self.algorithm = algorithm or default_algorithm(self._key)
        self.scopes = tuple(scopes)
        self.lifetime_seconds = lifetime_seconds

    def assertion(self, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {"iss": self.client_id, "scope": ",".join(self.scopes), "aud": self.token_url, "iat": issued,
                  "exp": issued + self.lifetime_seconds, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self._key, algorithm=self.algorithm,
                          headers={"typ": "JWT", "kid": self.certificate_id})

    def _token_request(self) -> tuple[dict[str, str], dict[str, str]]:
        form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                "client_assertion": self.assertion()}
        return form, {}

    def __repr__(self) -> str:
        return f"OAuth2ClientAssertion({self.token_url!r}, {self.client_id!r}, kid={self.certificate_id!r}, ***)"


class OAuth1Signature:
    """OAuth 1.0a (HMAC-SHA256) signature on every request, ``realm`` = the account id.

    NetSuite help, "The Signature for Web Services and RESTlets" (section_1534941088) and "The
    Authorization Headers" (section_1534941295). The client hands ``request_signer`` to requests,
    which signs each send (retries included) with a fresh nonce and timestamp.
    """

    refreshable = False

    def __init__(self, realm: str, consumer_key: str, consumer_secret: str, token_id: str, token_secret: str) -> None:
        self.realm = realm
        self.consumer_key = consumer_key
        self.token_id = token_id
        self.request_signer = OAuth1(consumer_key, client_secret=consumer_secret, resource_owner_key=token_id,
                                     resource_owner_secret=token_secret, signature_method=SIGNATURE_HMAC_SHA256,
                                     realm=realm)

    def apply(self, headers: dict[str, str]) -> int:
        return 0  # the signature depends on method, URL and body: ``request_signer`` adds it

    def refresh(self, generation: int | None = None) -> None:
        return None

    def __repr__(self) -> str:
        return f"OAuth1Signature(realm={self.realm!r}, consumer={self.consumer_key!r}, token={self.token_id!r}, ***)"


def realm_of(account_id: str) -> str:
    """The TBA realm of an account id: upper case, sandbox suffix with an underscore (1234567_SB1)."""
    return account_id.upper().replace("-", "_")


__all__ = ["JWT_BEARER", "OAuth1Signature", "OAuth2ClientAssertion", "default_algorithm", "realm_of"]

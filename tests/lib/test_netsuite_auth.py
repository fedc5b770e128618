"""The NetSuite connector's two logins (OAuth 2.0 M2M with a signed JWT assertion, and TBA)
against the sandbox, their configuration, and that no secret shows in reprs or errors."""

from __future__ import annotations

import jwt
import pytest

from ps_pipelines.lib.contracts import netsuite as contracts
from ps_pipelines.lib.http import AuthError
from ps_pipelines.lib.http.signed_auth import JWT_BEARER, OAuth1Signature, OAuth2ClientAssertion
from ps_pipelines.lib.sources.netsuite import NetSuiteClient
from ps_pipelines.resources import NetSuiteResource, build_resources
from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.netsuite_account import PUBLIC_KEY_PEM
from tests.conftest import RunningSandbox

M2M = DEFAULT_CREDENTIALS["netsuite"]
TBA = DEFAULT_CREDENTIALS["netsuite_tba"]


def _rows(client: NetSuiteClient) -> list[dict]:
    return [row for page in client.extract(contracts.SUBSIDIARIES, since=None) for row in page]


@pytest.mark.parametrize("credentials", [M2M, TBA], ids=["m2m", "tba"])
def test_both_logins_read_netsuite(sandbox: RunningSandbox, credentials: dict[str, str]) -> None:
    """NetSuite help, "OAuth 2.0 Client Credentials Setup" / "The Request Token Structure" (m2m)
    and "The Signature for Web Services and RESTlets" (tba): either login reads the account."""
    client = NetSuiteClient(sandbox.url, **credentials, sleep=[].append)
    assert len(_rows(client)) == len(sandbox.ctx.store.scan("netsuite", "subsidiary"))


def test_the_assertion_is_what_netsuite_documents() -> None:
    """NetSuite help, "The Request Token Structure" (section_162790605110): typ JWT, alg PS256,
    kid = certificate id; iss = client id, scope, aud = token endpoint, exp < iat + 60 minutes."""
    url = "https://1234567.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token"
    auth = OAuth2ClientAssertion(url, M2M["client_id"], M2M["certificate_id"], M2M["private_key_pem"])
    token = auth.assertion(now=1_800_000_000)
    header = jwt.get_unverified_header(token)
    assert (header["typ"], header["alg"], header["kid"]) == ("JWT", "PS256", M2M["certificate_id"])
    claims = jwt.decode(token, PUBLIC_KEY_PEM, algorithms=["PS256"], audience=url,
                        options={"verify_exp": False, "verify_iat": False})
    assert (claims["iss"], claims["scope"], claims["exp"] - claims["iat"]) == (M2M["client_id"], "rest_webservices",
                                                                                300)
    form, _ = auth._token_request()
    assert form["grant_type"] == "client_credentials" and form["client_assertion_type"] == JWT_BEARER
    with pytest.raises(ValueError, match="60 minutes"):
        OAuth2ClientAssertion(url, "c", "k", M2M["private_key_pem"], lifetime_seconds=3600)


def test_no_secret_in_reprs_errors_or_config_errors(sandbox: RunningSandbox) -> None:
    m2m = OAuth2ClientAssertion("https://x/token", M2M["client_id"], M2M["certificate_id"], M2M["private_key_pem"])
    tba = OAuth1Signature("1234567", TBA["consumer_key"], TBA["consumer_secret"], TBA["token_id"], TBA["token_secret"])
    assert "PRIVATE KEY" not in repr(m2m) and TBA["consumer_secret"] not in repr(tba)
    assert TBA["token_secret"] not in repr(tba)
    with pytest.raises(ValueError) as missing:
        NetSuiteClient(sandbox.url, "1234567", auth_mode="tba", consumer_key="k", consumer_secret="s3cr3t-value")
    assert "token_id" in str(missing.value) and "s3cr3t-value" not in str(missing.value)
    with pytest.raises(ValueError, match="not an unencrypted PEM"):
        NetSuiteClient(sandbox.url, "1234567", client_id="c", certificate_id="k", private_key_pem="garbage-key")
    wrong = NetSuiteClient(sandbox.url, **{**TBA, "token_secret": "wrong-token-secret"}, sleep=[].append)
    with pytest.raises(AuthError) as refused:
        _rows(wrong)
    assert "wrong-token-secret" not in str(refused.value) and "INVALID_LOGIN" in str(refused.value)
    assert wrong.stats()["retries"] == 0


def test_resources_choose_the_login(monkeypatch: pytest.MonkeyPatch) -> None:
    local = build_resources("local")["netsuite"]
    assert isinstance(local, NetSuiteResource) and local.auth_mode == "m2m" and local.certificate_id
    monkeypatch.setenv("NETSUITE_AUTH_MODE", "tba")
    production = build_resources("production")["netsuite"]
    assert isinstance(production, NetSuiteResource) and production.auth_mode == "tba"
    monkeypatch.delenv("NETSUITE_AUTH_MODE")
    assert build_resources("production")["netsuite"].auth_mode == "m2m"

"""Dagster resources, keyed by environment.

``local`` points every connector at the sandbox with its published sandbox credentials;
``production`` reads every URL, tenant and secret from environment variables through
``EnvVar`` at run time (never at import), so a real tenant needs configuration only.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from ps_pipelines.estate import Estate
from ps_pipelines.lib.sources.d365 import LOGIN_URL, D365Client
from ps_pipelines.lib.sources.hubspot import HubSpotClient
from ps_pipelines.lib.sources.kantata import KantataClient
from ps_pipelines.lib.sources.netsuite import NetSuiteClient
from ps_pipelines.lib.sources.salesforce import SalesforceClient
from ps_pipelines.lib.sources.workday import WorkdayClient
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback.ledger_store import LedgerStore

Environment = Literal["local", "production"]
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765"
DEFAULT_WAREHOUSE_PATH = ".ps_pipelines/warehouse.duckdb"
# Where the code location of `ps-pipelines dev` finds its sandbox and warehouse (and
# production its warehouse), read through EnvVar when a run or sensor starts.
SANDBOX_URL_ENV = "PS_SANDBOX_URL"
WAREHOUSE_PATH_ENV = "PS_WAREHOUSE_PATH"


class SourceResource(ConfigurableResource):
    """Settings every platform connection shares; retries and paging live in the client."""

    base_url: str = Field(description="Base URL of the platform's API (the sandbox locally).")
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 60.0
    max_retries: int = 6
    backoff_base_seconds: float = Field(default=0.5, description="First retry waits up to this (full jitter).")
    backoff_max_seconds: float = Field(default=30.0, description="Cap on one wait, Retry-After included.")
    verify_tls: bool = True

    def client_options(self) -> dict[str, Any]:
        return {
            "connect_timeout": self.connect_timeout_seconds,
            "read_timeout": self.read_timeout_seconds,
            "max_retries": self.max_retries,
            "backoff_base": self.backoff_base_seconds,
            "backoff_max": self.backoff_max_seconds,
            "verify": self.verify_tls,
        }


class SalesforceResource(SourceResource):
    client_id: str
    client_secret: str
    api_version: str = "v61.0"

    def client(self) -> SalesforceClient:
        return SalesforceClient(self.base_url, self.client_id, self.client_secret, api_version=self.api_version,
                                **self.client_options())


class CertiniaResource(SalesforceResource):
    """The Salesforce org that runs Certinia PSA (the ``pse__`` package): a Salesforce connection,
    often to the CRM's own org, under a key of its own so the PSA may live in another org."""


class KantataResource(SourceResource):
    token: str

    def client(self) -> KantataClient:
        return KantataClient(self.base_url, self.token, **self.client_options())


class HubSpotResource(SourceResource):
    """A HubSpot private app's access token; the client paces requests to the app's limits."""

    base_url: str = Field(default="https://api.hubapi.com", description="HubSpot's API host (the sandbox locally).")
    access_token: str = Field(description="The private app's access token (Bearer).")
    requests_per_second: float = Field(default=19.0, description="Burst pacing: 190 per 10 s for private apps on "
                                                                 "Professional and Enterprise.")
    search_requests_per_second: float = Field(default=4.0, description="Pacing of the search endpoint, whose "
                                                                       "documented limit is 5 per second.")

    def client(self) -> HubSpotClient:
        return HubSpotClient(self.base_url, self.access_token, requests_per_second=self.requests_per_second,
                             search_requests_per_second=self.search_requests_per_second, **self.client_options())


class WorkdayResource(SourceResource):
    tenant: str
    client_id: str
    client_secret: str
    refresh_token: str
    username: str = Field(description="Integration system user for RaaS reports.")
    password: str
    report_owner: str

    def client(self) -> WorkdayClient:
        return WorkdayClient(self.base_url, self.tenant, self.client_id, self.client_secret, self.refresh_token,
                             self.username, self.password, self.report_owner, **self.client_options())


class NetSuiteResource(SourceResource):
    """NetSuite logs in by OAuth 2.0 client credentials with a certificate-signed JWT (``m2m``)
    or by Token-Based Authentication (``tba``); a client id + secret alone is no NetSuite login."""

    account_id: str = Field(description="Account id, e.g. 1234567 or 1234567_SB1 for a sandbox.")
    auth_mode: Literal["m2m", "tba"] = "m2m"
    client_id: str | None = Field(default=None, description="m2m: the integration record's client id.")
    certificate_id: str | None = Field(default=None, description="m2m: certificate id of the M2M mapping.")
    private_key_pem: str | None = Field(default=None, description="m2m: the certificate's private key (PEM).")
    consumer_key: str | None = Field(default=None, description="tba: the integration record's consumer key.")
    consumer_secret: str | None = None
    token_id: str | None = Field(default=None, description="tba: the access token's id.")
    token_secret: str | None = None
    time_zone: str = Field(default="UTC", description="The integration user's time zone preference.")
    max_in_flight: int = Field(default=5, description="NetSuite's per-account concurrency limit.")

    def client(self) -> NetSuiteClient:
        return NetSuiteClient(self.base_url, self.account_id, auth_mode=self.auth_mode, client_id=self.client_id,
                              certificate_id=self.certificate_id, private_key_pem=self.private_key_pem,
                              consumer_key=self.consumer_key, consumer_secret=self.consumer_secret,
                              token_id=self.token_id, token_secret=self.token_secret, time_zone=self.time_zone,
                              max_in_flight=self.max_in_flight, **self.client_options())


class D365Resource(SourceResource):
    """A Dynamics 365 Finance and Operations environment (``base_url``: its URL, e.g.
    https://contoso.operations.dynamics.com) read by an Entra app registration's client credentials."""

    tenant: str = Field(description="Microsoft Entra tenant id (or domain) of the app registration.")
    client_id: str = Field(description="The app registration's application (client) id.")
    client_secret: str
    login_url: str = Field(default=LOGIN_URL, description="Entra ID's host (the sandbox locally).")
    page_size: int = Field(default=10_000, description="odata.maxpagesize asked for (the server caps at 10,000).")

    def client(self) -> D365Client:
        return D365Client(self.base_url, self.tenant, self.client_id, self.client_secret, login_url=self.login_url,
                          page_size=self.page_size, **self.client_options())


class WarehouseResource(ConfigurableResource):
    """The pipeline's DuckDB file; every writer goes through its single-writer lock."""

    database_path: str = DEFAULT_WAREHOUSE_PATH
    lock_timeout_seconds: float = 600.0

    def warehouse(self) -> Warehouse:
        return Warehouse(self.database_path, lock_timeout_seconds=self.lock_timeout_seconds)

    def ledger(self) -> LedgerStore:
        """The write-back ledger beside the warehouse, under its own lock (the warehouse only mirrors it)."""
        return self.warehouse().ledger


def _local(sandbox_url: str, warehouse_path: str) -> dict[str, ConfigurableResource]:
    # Imported lazily: production code locations never load the sandbox package.
    from ps_sandbox.context import DEFAULT_CREDENTIALS as creds

    wd = creds["workday"]
    return {
        "salesforce": SalesforceResource(base_url=sandbox_url, **creds["salesforce"]),
        # The sandbox's one org runs the package when started with it (salesforce_packages).
        "certinia": CertiniaResource(base_url=sandbox_url, **creds["salesforce"]),
        "kantata": KantataResource(base_url=sandbox_url, token=creds["kantata"]["token"]),
        "workday": WorkdayResource(base_url=sandbox_url, tenant=wd["tenant"], client_id=wd["client_id"],
                                   client_secret=wd["client_secret"], refresh_token=wd["refresh_token"],
                                   username=wd["username"], password=wd["password"],
                                   report_owner=wd["report_owner"]),
        "netsuite": NetSuiteResource(base_url=sandbox_url, **creds["netsuite"]),
        "warehouse": WarehouseResource(database_path=warehouse_path),
    }


def _production() -> dict[str, ConfigurableResource]:
    return {
        "salesforce": SalesforceResource(base_url=EnvVar("SALESFORCE_BASE_URL"),
                                         client_id=EnvVar("SALESFORCE_CLIENT_ID"),
                                         client_secret=EnvVar("SALESFORCE_CLIENT_SECRET")),
        "kantata": KantataResource(base_url=EnvVar("KANTATA_BASE_URL"), token=EnvVar("KANTATA_TOKEN")),
        "workday": WorkdayResource(base_url=EnvVar("WORKDAY_BASE_URL"), tenant=EnvVar("WORKDAY_TENANT"),
                                   client_id=EnvVar("WORKDAY_CLIENT_ID"),
                                   client_secret=EnvVar("WORKDAY_CLIENT_SECRET"),
                                   refresh_token=EnvVar("WORKDAY_REFRESH_TOKEN"),
                                   username=EnvVar("WORKDAY_RAAS_USERNAME"),
                                   password=EnvVar("WORKDAY_RAAS_PASSWORD"),
                                   report_owner=EnvVar("WORKDAY_RAAS_OWNER")),
        "netsuite": _production_netsuite(),
        "warehouse": WarehouseResource(database_path=EnvVar(WAREHOUSE_PATH_ENV)),
    }


def _production_netsuite() -> NetSuiteResource:
    """The NetSuite login named by ``NETSUITE_AUTH_MODE`` (``m2m``, the default, or ``tba``); only
    that mode's secrets are read, each through ``EnvVar`` at run time."""
    common: dict[str, Any] = {"base_url": EnvVar("NETSUITE_BASE_URL"), "account_id": EnvVar("NETSUITE_ACCOUNT_ID")}
    if os.environ.get("NETSUITE_TIME_ZONE"):
        common["time_zone"] = EnvVar("NETSUITE_TIME_ZONE")
    if os.environ.get("NETSUITE_AUTH_MODE", "m2m") == "tba":
        return NetSuiteResource(**common, auth_mode="tba", consumer_key=EnvVar("NETSUITE_CONSUMER_KEY"),
                                consumer_secret=EnvVar("NETSUITE_CONSUMER_SECRET"),
                                token_id=EnvVar("NETSUITE_TOKEN_ID"), token_secret=EnvVar("NETSUITE_TOKEN_SECRET"))
    return NetSuiteResource(**common, auth_mode="m2m", client_id=EnvVar("NETSUITE_CLIENT_ID"),
                            certificate_id=EnvVar("NETSUITE_CERTIFICATE_ID"),
                            private_key_pem=EnvVar("NETSUITE_PRIVATE_KEY_PEM"))


def hubspot_resources(environment: Environment = "local", *,
                      sandbox_url: str = DEFAULT_SANDBOX_URL) -> dict[str, ConfigurableResource]:
    """The HubSpot connection, for an estate that declares HubSpot (not in the default resources:
    only the declared estate's sources exist in the graph). Production reads the token and an
    optional host override through ``EnvVar`` at run time."""
    if environment == "production":
        host = {"base_url": EnvVar("HUBSPOT_BASE_URL")} if os.environ.get("HUBSPOT_BASE_URL") else {}
        return {"hubspot": HubSpotResource(access_token=EnvVar("HUBSPOT_ACCESS_TOKEN"), **host)}
    from ps_sandbox.context import DEFAULT_CREDENTIALS as creds

    return {"hubspot": HubSpotResource(base_url=sandbox_url, access_token=creds["hubspot"]["token"])}


def certinia_resources(environment: Environment = "local") -> dict[str, ConfigurableResource]:
    """The Certinia org in production (locally the sandbox's one org, already in the defaults):
    its own URL and connected app, read through ``EnvVar`` at run time."""
    if environment != "production":
        return {}
    return {"certinia": CertiniaResource(base_url=EnvVar("CERTINIA_BASE_URL"),
                                         client_id=EnvVar("CERTINIA_CLIENT_ID"),
                                         client_secret=EnvVar("CERTINIA_CLIENT_SECRET"))}


def d365_resources(environment: Environment = "local", *,
                   sandbox_url: str = DEFAULT_SANDBOX_URL) -> dict[str, ConfigurableResource]:
    """The Dynamics 365 connection, for an estate that declares it. Production reads the
    environment URL, tenant and app registration through ``EnvVar`` at run time; locally the
    sandbox is both the environment and Entra ID."""
    if environment == "production":
        return {"d365": D365Resource(base_url=EnvVar("D365_ENVIRONMENT_URL"), tenant=EnvVar("D365_TENANT_ID"),
                                     client_id=EnvVar("D365_CLIENT_ID"), client_secret=EnvVar("D365_CLIENT_SECRET"))}
    from ps_sandbox.context import DEFAULT_CREDENTIALS as creds

    d365 = creds["d365"]
    return {"d365": D365Resource(base_url=sandbox_url, login_url=sandbox_url, tenant=d365["tenant"],
                                 client_id=d365["client_id"], client_secret=d365["client_secret"])}


def estate_resources(estate: Estate, environment: Environment = "local", *,
                     sandbox_url: str = DEFAULT_SANDBOX_URL) -> dict[str, ConfigurableResource]:
    """The connections of the declared-only platforms ``estate`` names (the default estate's are
    always in ``build_resources``: write-back and read-back use them)."""
    resources: dict[str, ConfigurableResource] = {}
    if estate.declares("hubspot"):
        resources.update(hubspot_resources(environment, sandbox_url=sandbox_url))
    if estate.declares("certinia"):
        resources.update(certinia_resources(environment))
    if estate.declares("d365"):
        resources.update(d365_resources(environment, sandbox_url=sandbox_url))
    return resources


def build_resources(
    environment: Environment = "local",
    *,
    sandbox_url: str = DEFAULT_SANDBOX_URL,
    warehouse_path: str = DEFAULT_WAREHOUSE_PATH,
) -> dict[str, ConfigurableResource]:
    if environment == "production":
        return _production()
    return _local(sandbox_url, warehouse_path)

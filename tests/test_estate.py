"""The estate: which platforms a firm runs, parsed from ``PS_ESTATE`` or ``--estate``."""

from __future__ import annotations

import pytest

from ps_pipelines.cli import build_parser
from ps_pipelines.estate import DEFAULT_ESTATE, ESTATE_ENV, Estate, EstateError


def test_an_estate_names_its_platforms_per_role() -> None:
    estate = Estate.parse(" HubSpot, certinia ,workday,netsuite,hubspot")
    assert estate.platforms == ("hubspot", "certinia", "workday", "netsuite")  # lower case, once each, in order
    assert estate.for_role("crm") == ("hubspot",) and estate.for_role("psa") == ("certinia",)
    assert estate.declares("certinia") and not estate.declares("salesforce")
    assert estate.salesforce_packages() == ("certinia",)
    assert estate.psa_crm() == "hubspot"  # its PSA delivers what it sold in HubSpot
    assert str(estate) == "hubspot,certinia,workday,netsuite"


def test_a_role_may_have_more_than_one_platform() -> None:
    migrating = Estate.parse("salesforce,kantata,certinia,workday,netsuite")
    assert migrating.for_role("psa") == ("kantata", "certinia")


def test_the_default_estate_is_the_one_the_pipeline_always_ran() -> None:
    assert DEFAULT_ESTATE.platforms == ("salesforce", "kantata", "workday", "netsuite")
    assert DEFAULT_ESTATE.salesforce_packages() == ()
    assert DEFAULT_ESTATE.psa_crm() == "salesforce"
    assert Estate.parse("salesforce,hubspot,certinia,workday,netsuite").psa_crm() == "salesforce"


def test_an_unknown_platform_is_named_with_the_known_ones() -> None:
    with pytest.raises(EstateError, match=r"unknown platform\(s\) 'pipedrive'.*known: certinia, d365, hubspot"):
        Estate.parse("pipedrive,kantata,workday,netsuite")


def test_a_missing_role_is_named_with_the_platforms_that_could_fill_it() -> None:
    expected = r"no platform for role\(s\) crm, erp: crm: salesforce\|hubspot; erp: netsuite\|d365"
    with pytest.raises(EstateError, match=expected):
        Estate.parse("certinia,workday")


def test_the_environment_is_read_when_asked_and_empty_means_the_default() -> None:
    assert Estate.from_env({ESTATE_ENV: "hubspot,kantata,workday,netsuite"}).declares("hubspot")
    assert Estate.from_env({ESTATE_ENV: " "}) == DEFAULT_ESTATE
    assert Estate.from_env({}) == DEFAULT_ESTATE


def test_run_takes_an_estate_and_rejects_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["run", "--estate", "hubspot,certinia,workday,netsuite"])
    assert args.estate == Estate.parse("hubspot,certinia,workday,netsuite")
    assert build_parser().parse_args(["run"]).estate is None  # then PS_ESTATE, read when the run starts
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--estate", "hubspot,workday"])
    assert "no platform for role(s) psa, erp" in capsys.readouterr().err

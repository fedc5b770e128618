"""The estate: which platform plays each role at a firm (issue 13).

A firm runs one CRM, one PSA, one HR system and one ERP, not always the same ones; the
pipeline ingests only the platforms the estate declares, and the dbt layer unions them into
one canonical model. Pure Python (no Dagster): the CLI, the runner and the definitions all
parse the same string, e.g. ``hubspot,certinia,workday,netsuite``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ESTATE_ENV = "PS_ESTATE"

# Each supported platform and the role it plays; the roles are the ones every estate fills.
PLATFORM_ROLES: dict[str, str] = {
    "salesforce": "crm",
    "hubspot": "crm",
    "kantata": "psa",
    "certinia": "psa",
    "workday": "hr",
    "netsuite": "erp",
    "d365": "erp",
}
ROLES: tuple[str, ...] = ("crm", "psa", "hr", "erp")
DEFAULT_ESTATE_TEXT = "salesforce,kantata,workday,netsuite"

# Certinia PSA is a managed package inside a Salesforce org: the sandbox's org runs it only
# when started with it.
SALESFORCE_PACKAGES: dict[str, str] = {"certinia": "certinia"}


class EstateError(ValueError):
    """An estate string that names an unknown platform or leaves a role empty."""


@dataclass(frozen=True)
class Estate:
    """The declared platforms, in declaration order (a role may have more than one, e.g. a
    firm mid-migration from Kantata to Certinia)."""

    platforms: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [p for p in self.platforms if p not in PLATFORM_ROLES]
        if unknown:
            known = ", ".join(sorted(PLATFORM_ROLES))
            raise EstateError(f"unknown platform(s) {', '.join(map(repr, unknown))} in the estate; known: {known}")
        missing = [role for role in ROLES if not self.for_role(role)]
        if missing:
            raise EstateError(f"the estate {self} declares no platform for role(s) {', '.join(missing)}: "
                              + "; ".join(f"{role}: {'|'.join(_platforms_of(role))}" for role in missing))

    @classmethod
    def parse(cls, text: str) -> Estate:
        """``"hubspot,certinia,workday,netsuite"``: platform names, comma-separated, any case;
        a platform named twice counts once."""
        names = [name.strip().lower() for name in text.split(",") if name.strip()]
        return cls(tuple(dict.fromkeys(names)))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Estate:
        """The estate in ``PS_ESTATE``, or the default when unset or empty (read when called)."""
        text = (os.environ if environ is None else environ).get(ESTATE_ENV, "").strip()
        return cls.parse(text) if text else DEFAULT_ESTATE

    def for_role(self, role: str) -> tuple[str, ...]:
        return tuple(p for p in self.platforms if PLATFORM_ROLES[p] == role)

    def declares(self, platform: str) -> bool:
        return platform in self.platforms

    def salesforce_packages(self) -> tuple[str, ...]:
        """The managed packages the Salesforce org must run for this estate (the sandbox's too)."""
        return tuple(SALESFORCE_PACKAGES[p] for p in self.platforms if p in SALESFORCE_PACKAGES)

    def psa_crm(self) -> str:
        """The CRM the PSA's projects are sold in, for the sandbox to generate them so: the
        estate's only CRM, else (both CRMs, a HubSpot subsidiary beside a Salesforce parent)
        Salesforce, where the parent's delivered deals are."""
        return "hubspot" if self.for_role("crm") == ("hubspot",) else "salesforce"

    def __str__(self) -> str:
        return ",".join(self.platforms)


def _platforms_of(role: str) -> Iterable[str]:
    return (p for p, r in PLATFORM_ROLES.items() if r == role)


DEFAULT_ESTATE = Estate.parse(DEFAULT_ESTATE_TEXT)

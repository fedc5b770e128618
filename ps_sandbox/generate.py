"""Deterministic, realistic data for the sandbox's four platforms.

``populate(store, seed=, scale=)`` writes every platform's records in its own wire shape
(see the data-model table in the project brief and ``ps_pipelines/lib/contracts``). The
same ``(seed, scale)`` always yields byte-identical bodies: every random choice comes
from a ``random.Random`` seeded per domain, and every timestamp is relative to the fixed
anchor ``AS_OF`` (about 18 months of history before it), never the wall clock.

What exists, and how it hangs together:

- Workday: ``20 x scale`` workers (min 10) with roles, locations, cost centers, FTE, ~5%
  terminated; 1-3 effective-dated cost rates and 1-3 job-history rows each (RaaS).
- Kantata (in the objects Kantata documents, ``ps_sandbox.catalog.kantata``): one user per
  worker (e-mail = ``primaryWorkEmail``, ~2% drifted by case or a typo); a rate card set per
  region and year (one version effective on 1 January) with a rate card per currency, whose
  rate card roles price the firm's roles; a workspace for ~85% of won deals, each linked to
  its opportunity by an external reference (Salesforce / Opportunity / the opportunity id);
  milestones for fixed-fee/milestone projects plus task stories everywhere, a story state
  change recording each completion; ``10_000 x scale`` time entries (exactly, so 2M at scale
  200) and 5% as many expenses, submitted per person, project and week on timesheet and
  expense report submissions that are pending, approved or rejected (draft work is on none).
  Nobody logs more than 12 hours on a day, every project together (``DAY_CAP_MINUTES``).
  Time entries bill at the project's rate card rate for the user's role on that day.
- Salesforce: ``40 x scale`` accounts (min 5), 1-3 contacts each, 1-5 opportunities each
  (~40% Closed Won), and an Activated Contract per won deal. A few won deals lack a
  tax code or legal entity: they are incomplete, so they have no project anywhere yet.
- NetSuite: 4 subsidiaries, 5 currencies, daily exchange rates; a customer for ~90% of
  accounts with a won deal (~5% renamed, ~3% in another currency: realistic drift); a
  job for ~80% of workspaces; invoices (``CustInvc``) billing approved time older than
  ~6 weeks per project and month (time and materials) or completed milestones (fixed
  fee / milestone), each total equal to the sum of its lines. A few invoices dated before
  the billing go-live were posted by the pipeline's pilot (``externalid``
  ``psp:inv:<workspace>:<YYYY-MM>``), the rest keyed by hand.

Deliberately bad rows, so quarantine has realistic work (tiny and deterministic: ~0.1%,
at least one each): time entries with a negative ``time_in_minutes`` (always in weeks more
than three weeks old, never in the current timesheets the approval events work on) and
contacts with a malformed ``Email`` (no "@", or a domain without a dot). They are never
invoiced.

Generation streams rows into ``store.put_many`` in chunks of ``CHUNK_ROWS`` from a writer
thread, so memory stays bounded; scale 100 (1M time entries) takes about a minute.
"""

from __future__ import annotations

import gc
import hashlib
import queue
import random
import string
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any

from ps_sandbox.catalog.salesforce import AUTO_NUMBER_KEY
from ps_sandbox.store import SandboxStore

AS_OF = datetime(2026, 10, 31, 18, 0, tzinfo=UTC)
HISTORY_START = AS_OF - timedelta(days=548)
# The write-back's go-live (dbt var billing_start_date): the pilot's invoices predate it, so
# the ledger of a fresh warehouse reconciles with the ERP from that day on.
BILLING_GO_LIVE = date(2026, 9, 1)
CHUNK_ROWS = 20_000
TIME_ENTRIES_PER_SCALE = 10_000
EXPENSE_SHARE = 0.05
BAD_ROW_SHARE = 0.001
GENERATION_KV_KEY = "sandbox_generation"
# The CRMs the PSA's projects can be sold in (populate's psa_crm): the first is the default.
PSA_CRMS = ("salesforce", "hubspot")

Body = dict[str, Any]

# -- wire conventions shared with the control API ----------------------------------------

# The body fields that carry a record's change time (they must equal the store's
# updated_at). Workday workers and NetSuite transaction lines have none.
_CHANGE_FIELDS: dict[str, tuple[str, ...]] = {
    "salesforce": ("SystemModstamp", "LastModifiedDate"),
    "kantata": ("updated_at",),
    "workday": ("Last_Updated",),
    "netsuite": ("lastmodifieddate",),
    "hubspot": ("updatedAt",),
}
# HubSpot also carries the change time as a property (``hs_lastmodifieddate``; contacts
# ``lastmodifieddate``), the one a search filters on: it must equal ``updatedAt``.
_NESTED_CHANGE_PROPERTY = {"hubspot": ("properties", {"contacts": "lastmodifieddate"}, "hs_lastmodifieddate")}
_NO_CHANGE_FIELD = {("workday", "workers"), ("netsuite", "transactionline")} | {
    # Kantata objects that document no updated_at (ps_sandbox.catalog.kantata, change_field=None).
    ("kantata", obj) for obj in ("users", "roles", "rate_card_set_versions", "rate_card_roles")}


def truncate_timestamp(platform: str, moment: datetime) -> datetime:
    """Cut a moment to the precision the platform's wire format carries, so body == store."""
    moment = moment.astimezone(UTC)
    if platform in ("salesforce", "workday", "hubspot"):
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment.replace(microsecond=0)


def format_timestamp(platform: str, moment: datetime) -> str:
    # isoformat, not strftime: this runs millions of times during generation.
    moment = moment.astimezone(UTC)
    if platform in ("salesforce", "workday", "hubspot"):
        text = moment.isoformat(timespec="milliseconds")
        # HubSpot: "2019-10-30T03:30:17.883Z" (developers.hubspot.com, CRM search response example).
        return {"salesforce": f"{text[:-6]}+0000", "hubspot": f"{text[:-6]}Z"}.get(platform, text)
    text = moment.isoformat(timespec="seconds")
    return f"{text[:-6]}Z" if platform == "netsuite" else text


def change_fields(platform: str, obj: str, body: Mapping[str, Any]) -> tuple[str, ...]:
    if (platform, obj) in _NO_CHANGE_FIELD:
        return ()
    fields = _CHANGE_FIELDS.get(platform, ())
    # Salesforce records carry LastModifiedDate (a raw record written without one stays without).
    return tuple(f for f in fields if f != "LastModifiedDate" or f in body)


def stamp(platform: str, obj: str, body: Body, moment: datetime) -> datetime:
    """Set the body's change field(s) to ``moment``; returns the moment to store as updated_at."""
    moment = truncate_timestamp(platform, moment)
    for name in change_fields(platform, obj, body):
        body[name] = format_timestamp(platform, moment)
    nested = _NESTED_CHANGE_PROPERTY.get(platform)
    if nested is not None and isinstance(body.get(nested[0]), dict):
        container, by_object, default = nested
        body[container][by_object.get(obj, default)] = format_timestamp(platform, moment)
    return moment


SF_ADMIN_USER = "0058d0000000001AAA"  # the org's admin: creates and edits the generated CRM records
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase  # ASCII order: sorts like numbers
_SF_POD = "8d0"


def sf_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id with a real case-safe checksum suffix."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    id15 = f"{prefix}{_SF_POD}{digits.rjust(9, '0')}"
    return id15 + sf_checksum(id15)


def sf_checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitively unique."""
    suffix = ""
    for start in range(0, 15, 5):
        bits = sum(1 << i for i, ch in enumerate(id15[start:start + 5]) if "A" <= ch <= "Z")
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return suffix


def sf_id_number(record_id: str) -> int | None:
    """The counter inside an id made by ``sf_id`` (None for ids from elsewhere)."""
    if len(record_id) != 18 or record_id[3:6] != _SF_POD:
        return None
    number = 0
    for ch in record_id[6:15]:
        number = number * 62 + _BASE62.index(ch)
    return number


def stable_wid(*parts: str) -> str:
    """A Workday-style 32-hex id derived from names (consumes no randomness)."""
    return hashlib.md5(":".join(parts).encode()).hexdigest()


def time_entry_count(scale: float) -> int:
    """Time entries generated at ``scale``: exactly linear (2,000,000 at scale 200)."""
    return round(TIME_ENTRIES_PER_SCALE * scale)


def sample_size(population: int, share: float) -> int:
    """How many of ``population`` get a rare trait: about ``share``, but at least one."""
    return min(population, max(1, round(population * share))) if population else 0


def bad_row_count(rows: int) -> int:
    return sample_size(rows, BAD_ROW_SHARE)


# -- reference data --------------------------------------------------------------------


@dataclass(frozen=True)
class Subsidiary:
    id: str
    name: str
    country: str
    currency: str
    region: str


@dataclass(frozen=True)
class Market:
    country_code: str
    country: str
    subsidiary: Subsidiary
    currency: str
    tax_code: str
    legal_suffixes: tuple[str, ...]
    domain: str
    weight: int


SUBSIDIARIES = (
    Subsidiary("1", "PS Consulting Inc.", "US", "USD", "NA"),
    Subsidiary("2", "PS Consulting Ltd", "GB", "GBP", "EMEA"),
    Subsidiary("3", "PS Consulting GmbH", "DE", "EUR", "EMEA"),
    Subsidiary("4", "PS Consulting Pty Ltd", "AU", "AUD", "APAC"),
)
_INC, _LTD, _GMBH, _PTY = SUBSIDIARIES
MARKETS = (
    Market("US", "United States", _INC, "USD", "US-EXEMPT", ("Inc", "LLC"), "com", 35),
    Market("CA", "Canada", _INC, "CAD", "CA-GST5", ("Corp", "Ltd"), "ca", 8),
    Market("GB", "United Kingdom", _LTD, "GBP", "GB-VAT20", ("Ltd", "plc"), "co.uk", 20),
    Market("DE", "Germany", _GMBH, "EUR", "DE-VAT19", ("GmbH", "AG"), "de", 12),
    Market("FR", "France", _GMBH, "EUR", "FR-VAT20", ("SA", "SAS"), "fr", 5),
    Market("NL", "Netherlands", _GMBH, "EUR", "NL-VAT21", ("B.V.", "N.V."), "nl", 5),
    Market("AU", "Australia", _PTY, "AUD", "AU-GST10", ("Pty Ltd",), "com.au", 12),
    Market("NZ", "New Zealand", _PTY, "AUD", "NZ-GST15", ("Limited",), "co.nz", 3),
)
MARKETS_BY_COUNTRY = {m.country: m for m in MARKETS}

# (NetSuite id, code, name, USD per unit around the anchor)
CURRENCIES = (
    ("1", "USD", "US Dollar", 1.0),
    ("2", "GBP", "British Pound", 1.27),
    ("3", "EUR", "Euro", 1.08),
    ("4", "AUD", "Australian Dollar", 0.66),
    ("5", "CAD", "Canadian Dollar", 0.73),
)
CURRENCY_IDS = {code: cid for cid, code, _, _ in CURRENCIES}
# Price lists are set per currency, not converted daily: local units per USD of list price.
_PRICE_FACTORS = {"USD": 1.0, "GBP": 0.8, "EUR": 0.92, "AUD": 1.5, "CAD": 1.35}

ROLES = ("Partner", "Director", "Senior Manager", "Manager", "Senior Consultant", "Consultant", "Analyst")
_ROLE_WEIGHTS = (5, 8, 12, 15, 22, 25, 13)
_BILL_RATE_USD = dict(zip(ROLES, (450, 380, 310, 260, 210, 170, 125), strict=True))
_COST_RATE_USD = dict(zip(ROLES, (200, 165, 130, 105, 85, 68, 50), strict=True))
RATE_CARD_MARKETS = (("NA", "USD"), ("NA", "CAD"), ("EMEA", "GBP"), ("EMEA", "EUR"), ("APAC", "AUD"))
RATE_CARD_YEARS = (2024, 2025, 2026)

# (descriptor, region, pay currency, weight)
LOCATIONS = (
    ("New York", "NA", "USD", 25), ("Chicago", "NA", "USD", 12), ("Toronto", "NA", "CAD", 8),
    ("London", "EMEA", "GBP", 22), ("Berlin", "EMEA", "EUR", 15), ("Sydney", "APAC", "AUD", 18),
)
COST_CENTERS = {"NA": "CC-100 Consulting North America", "EMEA": "CC-200 Consulting EMEA",
                "APAC": "CC-300 Consulting APAC"}

BILLING_MODELS = (("Time and Materials", 60), ("Fixed Fee", 25), ("Milestone", 15))
_OPEN_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote",
                "Negotiation/Review")
STAGE_PROBABILITY = {"Prospecting": 10, "Qualification": 10, "Needs Analysis": 20, "Proposal/Price Quote": 75,
                     "Negotiation/Review": 90, "Closed Won": 100, "Closed Lost": 0}
PAYMENT_TERMS = ("Net 30", "Net 30", "Net 45", "Net 60")
INDUSTRIES = ("Technology", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Energy", "Media",
              "Telecommunications", "Transportation", "Insurance", "Education", "Government")
CONTACT_TITLES = ("CFO", "CIO", "VP Finance", "Head of Operations", "IT Director", "Procurement Manager",
                  "Program Manager", "Controller", "COO", "Head of Transformation")
OPPORTUNITY_TYPES = ("New Business", "Existing Business", "Renewal")
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley",
    "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Oliver", "Amelia", "Lukas", "Mia",
    "Noah", "Hannah", "Liam", "Sophie", "Ethan", "Chloe", "Jack", "Grace", "Felix", "Lena",
    "Arjun", "Priya", "Wei", "Mei", "Kenji", "Yuki", "Mateo", "Lucia", "Omar", "Fatima",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
    "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green",
    "Baker", "Adams", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Campbell", "Parker",
    "Evans", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Schmidt", "Muller",
    "Fischer", "Weber", "Patel", "Singh", "Chen", "Wang", "Tanaka", "Sato", "Rossi", "Novak",
)
COMPANY_PREFIXES = (
    "Apex", "Bluefin", "Cobalt", "Driftwood", "Evergreen", "Falcon", "Granite", "Harbor", "Ironwood",
    "Juniper", "Keystone", "Lakeside", "Meridian", "Northwind", "Oakridge", "Pinnacle", "Quarry", "Redwood",
    "Summit", "Tidewater", "Unity", "Vantage", "Westfield", "Zenith", "Silverline", "Brightwater", "Crescent",
    "Horizon", "Beacon", "Cedar", "Atlas", "Orchard", "Riverside", "Stonebridge", "Trinity", "Sterling",
    "Copperleaf", "Highland", "Mariner", "Aurora", "Bramble", "Cascade", "Delta", "Ember", "Fjord", "Glacier",
    "Helix", "Indigo", "Jasper", "Kestrel",
)
COMPANY_CORES = (
    "Logistics", "Analytics", "Health", "Energy", "Capital", "Foods", "Retail", "Manufacturing", "Pharma",
    "Media", "Telecom", "Insurance", "Software", "Engineering", "Mining", "Hotels", "Aviation", "Bank",
    "Motors", "Labs", "Utilities", "Freight", "Robotics", "Chemicals", "Textiles", "Biotech", "Realty",
    "Marine", "Agritech", "Payments",
)
COMPANY_TAILS = ("", " Group", " Holdings", " International", " Partners", " Systems", " Global",
                 " Industries")
PROJECT_KINDS = (
    "ERP Implementation", "Data Platform Modernisation", "Cloud Migration", "CRM Rollout",
    "Finance Transformation", "Supply Chain Optimisation", "Cybersecurity Assessment", "Analytics Enablement",
    "Process Automation",
    "Target Operating Model", "Post-Merger Integration", "HR System Upgrade", "Pricing Strategy",
    "Digital Roadmap", "Managed Reporting Service", "Regulatory Compliance Programme",
)
MILESTONE_NAMES = ("Discovery", "Design Sign-off", "Build Complete", "User Acceptance")
FINAL_MILESTONE = "Go-Live"
TASK_NAMES = ("Workshops", "Requirements", "Configuration", "Data Migration", "Testing", "Training",
              "Project Management", "Reporting", "Integration Build", "Stakeholder Interviews")
NOTES = (
    "Client workshop", "Requirements walkthrough", "Configuration work", "Data mapping", "Status meeting",
    "Test script preparation", "Defect triage", "Documentation", "Steering committee prep", "Solution design",
    "Integration testing", "Training session", "Report build", "Stakeholder interviews", "Internal review",
    "Cutover planning", "Data validation", "Follow-up actions", "Estimate refinement", "Hypercare support",
)
# (category, min cents, max cents, note)
EXPENSE_CATEGORIES = (
    ("Airfare", 15_000, 120_000, "Flight to client site"), ("Lodging", 12_000, 45_000, "Hotel stay"),
    ("Meals", 1_500, 12_000, "Working dinner"), ("Mileage", 2_000, 15_000, "Drive to client office"),
    ("Ground Transportation", 1_500, 9_000, "Taxi to client office"),
    ("Software", 2_000, 50_000, "Tool licence"),
)
WORKSPACE_STATUSES = {
    "active": {"color": "green", "key": 310, "message": "Active"},
    "at_risk": {"color": "yellow", "key": 320, "message": "At Risk"},
    "completed": {"color": "grey", "key": 500, "message": "Completed"},
}
_MINUTES = tuple(range(30, 481, 15))
# Nobody logs more than this on one day, every project together: billing holds an invoice with
# a person's day above var billing_max_hours_per_worker_day (24 h), as a timesheet error.
DAY_CAP_MINUTES = 12 * 60
_MINUTE_WEIGHTS = tuple(6 if m >= 240 else 2 for m in _MINUTES)

# Kantata ids are numeric strings; a fixed width per object keeps lexical order numeric.
_KANTATA_BASE = {"roles": 100, "rate_cards": 500, "rate_card_sets": 600, "rate_card_set_versions": 700,
                 "rate_card_versions": 800, "rate_card_roles": 1_000, "users": 2_000_000,
                 "workspaces": 40_000_000, "stories": 70_000_000, "story_state_changes": 80_000_000,
                 "time_entries": 300_000_000, "expenses": 600_000_000, "timesheet_submissions": 700_000_000,
                 "expense_report_submissions": 800_000_000, "external_references": 900_000_000}
# How a workspace names the CRM opportunity it delivers (a Kantata external reference: the
# provider, the external object's type and its id; developer.kantata.com, External References).
OPPORTUNITY_SERVICE, OPPORTUNITY_MODEL = "Salesforce", "Opportunity"
_NETSUITE_BASE = {"currencyrate": 10_000, "customer": 100_000, "job": 200_000, "transaction": 1_000_000}


# -- domain model built before anything is written -----------------------------------


@dataclass
class Worker:
    wid: str
    worker_id: str
    first: str
    last: str
    email: str
    location: tuple[str, str, str, int]
    fte: float
    hire: date
    termination: date | None
    roles: list[tuple[date, str]]  # (effective date, role), ascending
    user_id: str = ""

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def role(self) -> str:
        return self.roles[-1][1]

    @property
    def region(self) -> str:
        return self.location[1]

    def active_on(self, day_ordinal: int) -> bool:
        if day_ordinal < self.hire.toordinal():
            return False
        return self.termination is None or day_ordinal <= self.termination.toordinal()

    def role_on(self, day_ordinal: int) -> str:
        if len(self.roles) == 1:
            return self.roles[0][1]
        current = self.roles[0][1]
        for effective, role in self.roles:
            if effective.toordinal() <= day_ordinal:
                current = role
        return current


@dataclass
class RateCard:
    id: str
    region: str
    currency: str
    year: int
    rates: dict[str, int]


@dataclass
class Account:
    id: str
    name: str
    market: Market
    created: datetime
    owner: str
    industry: str
    deals: list[Deal] = field(default_factory=list)
    customer_id: str | None = None


@dataclass
class Deal:
    id: str
    account: Account
    name: str
    stage: str
    amount: int
    close: date
    created: datetime
    billing_model: str
    deal_type: str
    contract_id: str | None = None
    contract_number: str = ""
    start: date | None = None
    end: date | None = None
    term: int = 0
    payment_terms: str = "Net 30"
    missing_field: str | None = None
    project: Project | None = None

    @property
    def won(self) -> bool:
        return self.stage == "Closed Won"


@dataclass
class Milestone:
    id: str
    title: str
    due: date
    state: str
    completed_at: datetime | None
    budget_cents: int


@dataclass
class Project:
    id: str
    deal: Deal
    created: datetime
    card: RateCard
    team: list[Worker]
    tasks: list[str] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    job_id: str | None = None
    entry_target: int = 0
    expense_target: int = 0
    # Monday ordinal -> (the project's workdays that week, time entries, expenses)
    schedule: dict[int, tuple[list[int], int, int]] = field(default_factory=dict)

    @property
    def first_day(self) -> int:
        return self.deal.start.toordinal()

    @property
    def last_day(self) -> int:
        return min(self.deal.end, AS_OF.date()).toordinal()

    @cached_property
    def workdays(self) -> int:
        return _workdays_between(self.first_day, self.last_day)


def _weekly_schedule(project: Project) -> dict[int, tuple[list[int], int, int]]:
    """Spread the project's exact totals evenly over its workdays, week by week."""
    schedule = {}
    first, last, total = project.first_day, project.last_day, project.workdays
    seen = entries_done = expenses_done = 0
    monday = first - (first - 1) % 7  # ordinal 1 (0001-01-01) is a Monday
    while monday <= last:
        days = list(range(max(monday, first), min(monday + 4, last) + 1))
        if days:  # cumulative rounding: the last week lands exactly on the totals
            seen += len(days)
            entries = project.entry_target * seen // total - entries_done
            expenses = project.expense_target * seen // total - expenses_done
            entries_done, expenses_done = entries_done + entries, expenses_done + expenses
            schedule[monday] = (days, entries, expenses)
        monday += 7
    return schedule


def _workdays_between(first: int, last: int) -> int:
    """Mon-Fri days in [first, last] (ordinals; ordinal % 7 == 0 is a Sunday)."""
    if last < first:
        return 0
    full_weeks, extra = divmod(last - first + 1, 7)
    count = full_weeks * 5
    for offset in range(extra):
        if (first + offset) % 7 not in (0, 6):
            count += 1
    return count


# -- helpers -------------------------------------------------------------------------


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _business_moment(rng: random.Random, day: date) -> datetime:
    """A whole-second moment during office hours of ``day``, never after AS_OF."""
    return min(_midnight(day) + timedelta(seconds=rng.randrange(8 * 3600, 19 * 3600)), AS_OF)


def _random_day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _without_nulls(body: Body) -> Body:
    # SuiteQL leaves empty columns out of a result row instead of answering null.
    return {k: v for k, v in body.items() if v is not None}


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` proportionally to ``weights`` into integers that sum to it exactly."""
    weight_sum = sum(weights)
    if not weight_sum:
        return [0] * len(weights)
    shares = [total * w // weight_sum for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight_sum), i))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


class _Sink:
    """Buffers rows per (platform, object) and stores them in bounded chunks.

    A writer thread stores each full chunk while generation goes on: SQLite releases the
    GIL while it writes, so the two overlap. The queue is bounded, so memory stays at a
    few chunks however large the scale.
    """

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.buffers: dict[tuple[str, str], list[tuple[str, datetime, Body]]] = defaultdict(list)
        self.counts: dict[str, int] = {}
        self._chunks: queue.Queue[tuple[str, str, list] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_chunks, name="sandbox-generate-writer", daemon=True)
        self._writer.start()

    def _write_chunks(self) -> None:
        # A bigger page cache keeps the change-time index inserts in memory at millions of rows.
        self.store.conn.execute("PRAGMA cache_size = -131072")
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:  # after a failure keep draining, so the producer never blocks
                try:
                    self.store.put_many(*chunk)
                except BaseException as exc:
                    self._error = exc

    def add(self, platform: str, obj: str, record_id: str, updated: datetime, body: Body) -> None:
        buffer = self.buffers[(platform, obj)]
        buffer.append((record_id, updated, body))
        if len(buffer) >= CHUNK_ROWS:
            self._flush(platform, obj)

    def _flush(self, platform: str, obj: str) -> None:
        if self._error is not None:
            raise self._error
        rows = self.buffers.pop((platform, obj), [])
        if rows:
            self._chunks.put((platform, obj, rows))
            key = f"{platform}.{obj}"
            self.counts[key] = self.counts.get(key, 0) + len(rows)

    def close(self) -> dict[str, int]:
        """Store what is left and wait for the writer; raises what the writer hit."""
        try:
            for platform, obj in list(self.buffers):
                self._flush(platform, obj)
        finally:
            self._chunks.put(None)
            self._writer.join()
        if self._error is not None:
            raise self._error
        return dict(sorted(self.counts.items()))


# -- the generator --------------------------------------------------------------------


class _Generator:
    def __init__(self, store: SandboxStore, seed: int, scale: float, certinia: bool = False,
                 bad_rows: bool = True, psa_crm: str = "salesforce") -> None:
        self.seed, self.scale = seed, scale
        self.bad_rows = bad_rows
        self.psa_crm = psa_crm
        self.sink = _Sink(store)
        self.certinia = None
        if certinia:  # imported only here: the Certinia writer builds on this module
            from ps_sandbox.certinia_data import CertiniaWriter

            self.certinia = CertiniaWriter(self)
        self.asof_day = AS_OF.date()
        self.workers: list[Worker] = []
        self.cards: list[RateCard] = []
        self.accounts: list[Account] = []
        self.projects: list[Project] = []
        self.counters: dict[str, int] = defaultdict(int)
        self.kts = lambda moment: format_timestamp("kantata", moment)
        self.sts = lambda moment: format_timestamp("salesforce", moment)
        self.nts = lambda moment: format_timestamp("netsuite", moment)

    def rng(self, domain: str) -> random.Random:
        # String seeds hash with SHA-512, so this is stable across processes and runs.
        return random.Random(f"{self.seed}:{domain}")

    def next_id(self, key: str) -> int:
        self.counters[key] += 1
        return self.counters[key]

    def kantata_id(self, obj: str) -> str:
        return str(_KANTATA_BASE[obj] + self.next_id(f"kantata.{obj}"))

    def netsuite_id(self, obj: str) -> str:
        return str(_NETSUITE_BASE[obj] + self.next_id(f"netsuite.{obj}"))

    def run(self) -> dict[str, int]:
        try:
            self.generate()
        except BaseException:
            self.sink.close()  # stop the writer thread before giving up
            raise
        return self.sink.close()

    def generate(self) -> None:
        self.netsuite_reference()
        self.plan_workers()
        self.plan_rate_cards()
        self.plan_crm()
        self.plan_projects()
        self.plan_erp()
        self.write_workday()
        self.write_kantata_reference()
        self.write_salesforce()
        self.write_workspaces()
        if self.certinia is not None:
            self.certinia.write_setup()
        invoicing = self.write_activity()
        self.write_erp_masters()
        self.write_invoices(invoicing)

    # NetSuite reference data ------------------------------------------------------
    def netsuite_reference(self) -> None:
        created = datetime(2019, 1, 15, 10, tzinfo=UTC)
        for sub in SUBSIDIARIES:
            self.sink.add("netsuite", "subsidiary", sub.id, created, {
                "id": sub.id, "name": sub.name, "country": sub.country,
                "currency": CURRENCY_IDS[sub.currency], "isinactive": "F",
                "lastmodifieddate": self.nts(created)})
        latest = self.write_exchange_rates()
        last_rate_moment = _midnight(self.asof_day) + timedelta(minutes=5)
        for cid, code, name, _ in CURRENCIES:
            rate = latest.get(code, 1.0)
            self.sink.add("netsuite", "currency", cid, last_rate_moment, {
                "id": cid, "symbol": code, "name": name, "isbasecurrency": "T" if code == "USD" else "F",
                "exchangerate": f"{rate:.6f}", "lastmodifieddate": self.nts(last_rate_moment)})

    def write_exchange_rates(self) -> dict[str, float]:
        """A mean-reverting daily random walk per currency vs USD; returns the last rates."""
        rng = self.rng("fx")
        levels = {code: usd for _, code, _, usd in CURRENCIES if code != "USD"}
        day = HISTORY_START.date()
        while day <= self.asof_day:
            moment = _midnight(day) + timedelta(minutes=5)
            for cid, code, _, usd in CURRENCIES[1:]:
                levels[code] *= 1 + rng.gauss(0, 0.004) + 0.03 * (usd - levels[code]) / usd
                rid = self.netsuite_id("currencyrate")
                self.sink.add("netsuite", "currencyrate", rid, moment, {
                    "id": rid, "basecurrency": "1", "transactioncurrency": cid,
                    "exchangerate": f"{levels[code]:.6f}", "effectivedate": day.isoformat(),
                    "lastmodifieddate": self.nts(moment)})
            day += timedelta(days=1)
        return levels

    # Workday ------------------------------------------------------------------------
    def plan_workers(self) -> None:
        rng = self.rng("workday")
        count = max(10, round(20 * self.scale))
        emails: set[str] = set()
        for index in range(count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = self._unique_email(f"{first}.{last}".lower(), "psconsulting.com", emails)
            location = rng.choices(LOCATIONS, weights=[loc[3] for loc in LOCATIONS])[0]
            hire = (_random_day(rng, date(2014, 1, 6), HISTORY_START.date()) if rng.random() < 0.8
                    else _random_day(rng, HISTORY_START.date(), self.asof_day - timedelta(days=45)))
            termination = None
            if rng.random() < 0.05:
                earliest = max(hire + timedelta(days=60), HISTORY_START.date())
                termination = _random_day(rng, earliest, self.asof_day - timedelta(days=7))
            roles = self._career(rng, rng.choices(ROLES, weights=_ROLE_WEIGHTS)[0], hire, termination)
            fte = rng.choices((1.0, 0.8, 0.5), weights=(90, 6, 4))[0]
            worker = Worker(wid=f"{rng.getrandbits(128):032x}", worker_id=str(21001 + index), first=first,
                            last=last, email=email, location=location, fte=fte, hire=hire,
                            termination=termination, roles=roles)
            self.workers.append(worker)

    @staticmethod
    def _unique_email(local: str, domain: str, taken: set[str]) -> str:
        candidate, suffix = f"{local}@{domain}", 1
        while candidate in taken:
            suffix += 1
            candidate = f"{local}{suffix}@{domain}"
        taken.add(candidate)
        return candidate

    def _career(self, rng: random.Random, role: str, hire: date,
                termination: date | None) -> list[tuple[date, str]]:
        """Hire role, and for ~30% a promotion into ``role`` from the level below."""
        level = ROLES.index(role)
        end = (termination or self.asof_day) - timedelta(days=30)
        earliest = hire + timedelta(days=180)
        if level == len(ROLES) - 1 or earliest >= end or rng.random() >= 0.3:
            return [(hire, role)]
        return [(hire, ROLES[level + 1]), (_random_day(rng, earliest, end), role)]

    def write_workday(self) -> None:
        rng = self.rng("workday-raas")
        for worker in self.workers:
            self._write_job_history(rng, worker)
            self._write_cost_rates(rng, worker)
            events = [d for d, _ in worker.roles] + ([worker.termination] if worker.termination else [])
            updated = _business_moment(rng, max(events))
            # Cost center and FTE are not on Workday's worker resource: the job history report has them.
            name = worker.location[0]
            self.sink.add("workday", "workers", worker.wid, updated, {
                "id": worker.wid, "workerID": worker.worker_id, "descriptor": worker.name,
                "primaryWorkEmail": worker.email, "businessTitle": worker.role,
                "jobProfile": {"id": stable_wid("jobProfile", worker.role), "descriptor": worker.role},
                "location": {"id": stable_wid("location", name), "descriptor": name},
                "hireDate": worker.hire.isoformat(),
                "terminationDate": worker.termination.isoformat() if worker.termination else None,
                "isActive": worker.termination is None, "isManager": False})

    def _raas(self, obj: str, rng: random.Random, worker: Worker, effective: date, row: Body) -> None:
        updated = truncate_timestamp("workday", _business_moment(rng, effective))
        body = {"Worker_ID": worker.worker_id, "Effective_Date": effective.isoformat(), **row,
                "Last_Updated": format_timestamp("workday", updated)}
        self.sink.add("workday", obj, f"{worker.worker_id}|{effective.isoformat()}", updated, body)

    def _write_job_history(self, rng: random.Random, worker: Worker) -> None:
        name, region, _, _ = worker.location
        shared = {"Cost_Center": COST_CENTERS[region], "FTE": f"{worker.fte:.1f}", "Location": name}
        for effective, role in worker.roles:
            self._raas("Worker_Job_History", rng, worker, effective, {
                "Job_Profile": role, "Business_Title": role, **shared, "Employment_Status": "Active"})
        if worker.termination:
            self._raas("Worker_Job_History", rng, worker, worker.termination, {
                "Job_Profile": worker.role, "Business_Title": worker.role, **shared,
                "Employment_Status": "Terminated"})

    def _write_cost_rates(self, rng: random.Random, worker: Worker) -> None:
        """Cost at hire, then an April raise each year; the report keeps the last 1-3."""
        last = worker.termination or self.asof_day
        dates = [worker.hire] + [date(y, 4, 1) for y in range(worker.hire.year + 1, last.year + 1)
                                 if date(y, 4, 1) <= last]
        currency = worker.location[2]
        base = _COST_RATE_USD[worker.role] * _PRICE_FACTORS[currency] * rng.uniform(0.9, 1.1)
        kept = dates[-rng.randint(1, 3):]
        for position, effective in enumerate(kept):
            rate = base * 1.03 ** (position - len(kept) + 1)
            self._raas("Worker_Cost_Rates", rng, worker, effective, {
                "Cost_Rate": f"{rate:.2f}", "Currency": currency, "Rate_Type": "Standard Hourly"})

    # Kantata reference --------------------------------------------------------------
    def plan_rate_cards(self) -> None:
        for year in RATE_CARD_YEARS:
            for region, currency in RATE_CARD_MARKETS:
                uplift = 1.04 ** (year - RATE_CARD_YEARS[0]) * _PRICE_FACTORS[currency]
                rates = {role: round(usd * 100 * uplift / 500) * 500 for role, usd in _BILL_RATE_USD.items()}
                self.cards.append(RateCard(self.kantata_id("rate_cards"), region, currency, year, rates))

    def card_for(self, region: str, currency: str, day: date) -> RateCard:
        year = min(max(day.year, RATE_CARD_YEARS[0]), RATE_CARD_YEARS[-1])
        return next(c for c in self.cards if (c.region, c.currency, c.year) == (region, currency, year))

    def write_kantata_reference(self) -> None:
        """Roles, then per region and year a rate card set with one version effective on 1 January,
        holding the region's currency cards, each with one rate card version of role rates."""
        roles = {}
        for role in ROLES:
            roles[role] = self.kantata_id("roles")
            self.sink.add("kantata", "roles", roles[role], datetime(2019, 1, 7, 10, tzinfo=UTC),
                          {"id": roles[role], "name": role})
        by_set: dict[tuple[str, int], list[RateCard]] = defaultdict(list)
        for card in self.cards:
            by_set[(card.region, card.year)].append(card)
        for (region, year), cards in by_set.items():
            created = datetime(year - 1, 12, 1, 10, tzinfo=UTC)
            updated = datetime(year, 12, 1, 10, tzinfo=UTC) if year < RATE_CARD_YEARS[-1] else created
            set_id, set_version_id = self.kantata_id("rate_card_sets"), self.kantata_id("rate_card_set_versions")
            title = f"{region} Standard {year}"
            version_ids = []
            for card in cards:
                version_id = self.kantata_id("rate_card_versions")
                version_ids.append(version_id)
                role_ids = []
                for role, cents in card.rates.items():
                    role_id = self.kantata_id("rate_card_roles")
                    role_ids.append(role_id)
                    self.sink.add("kantata", "rate_card_roles", role_id, created, {
                        "id": role_id, "rate": cents, "role_id": roles[role], "rate_card_version_id": version_id})
                self.sink.add("kantata", "rate_card_versions", version_id, created, {
                    "id": version_id, "default_rate": None, "rate_card_id": card.id,
                    "rate_card_set_version_id": set_version_id, "rate_card_role_ids": role_ids,
                    "created_at": self.kts(created), "updated_at": self.kts(created)})
                self.sink.add("kantata", "rate_cards", card.id, updated, {
                    "id": card.id, "currency": card.currency, "uses": 0, "rate_card_set_id": set_id,
                    "rate_card_version_ids": [version_id], "rate_card_set_title": f"{title} {card.currency}",
                    "removable": False, "created_at": self.kts(created), "updated_at": self.kts(updated)})
            self.sink.add("kantata", "rate_card_set_versions", set_version_id, created, {
                "id": set_version_id, "active": True, "effective_date": f"{year}-01-01",
                "used_currencies": [card.currency for card in cards], "rate_card_set_id": set_id,
                "rate_card_version_ids": version_ids})
            self.sink.add("kantata", "rate_card_sets", set_id, updated, {
                "id": set_id, "title": title, "account_default": False,
                "active_currencies": [card.currency for card in cards], "default_currencies": [],
                "destroyable": False, "rate_card_ids": [card.id for card in cards],
                "rate_card_set_version_ids": [set_version_id], "created_at": self.kts(created),
                "updated_at": self.kts(updated)})
        self.write_users()

    def write_users(self) -> None:
        rng = self.rng("kantata-users")
        drifted = set(rng.sample(range(len(self.workers)), sample_size(len(self.workers), 0.02)))
        for index, worker in enumerate(self.workers):
            worker.user_id = self.kantata_id("users")
            email = _drift_email(rng, worker.email) if index in drifted else worker.email
            created = _business_moment(rng, max(worker.hire, date(2019, 1, 7)))
            updated = _business_moment(rng, worker.termination) if worker.termination else created
            # Kantata documents no created/updated time on a user (the store keeps the change time).
            self.sink.add("kantata", "users", worker.user_id, updated, {
                "id": worker.user_id, "full_name": worker.name, "email_address": email,
                "headline": worker.role, "disabled": worker.termination is not None, "photo_path": None})

    # Salesforce -----------------------------------------------------------------------
    def plan_crm(self) -> None:
        rng = self.rng("crm")
        owners = [sf_id("005", n) for n in range(1, 7)]
        names: set[str] = set()
        for _ in range(max(5, round(40 * self.scale))):
            market = rng.choices(MARKETS, weights=[m.weight for m in MARKETS])[0]
            first_seen = _random_day(rng, date(2019, 1, 1), self.asof_day - timedelta(days=90))
            created = _business_moment(rng, first_seen)
            account = Account(sf_id("001", self.next_id("sf.001")), _company_name(rng, market, names), market,
                              created, rng.choice(owners), rng.choice(INDUSTRIES))
            for _ in range(rng.randint(1, 5)):
                account.deals.append(self._plan_deal(rng, account))
            self.accounts.append(account)
        self._ensure_won(rng, 2)
        for account in self.accounts:  # an account exists before its first opportunity
            earliest = min(deal.created for deal in account.deals)
            if account.created >= earliest:
                account.created = earliest - timedelta(days=rng.randint(1, 30))
        won = [deal for account in self.accounts for deal in account.deals if deal.won]
        self._mark_incomplete(rng, won)

    def _ensure_won(self, rng: random.Random, minimum: int) -> None:
        """Even the tiniest sandbox needs a complete won deal for everything downstream."""
        for account in self.accounts:
            won = sum(d.won for a in self.accounts for d in a.deals)
            if won >= minimum:
                return
            if not account.deals[0].won:
                account.deals[0] = self._plan_deal(rng, account, "Closed Won")

    def _plan_deal(self, rng: random.Random, account: Account, stage: str | None = None) -> Deal:
        roll = rng.random()
        if stage is None:
            stage = "Closed Won" if roll < 0.4 else "Closed Lost" if roll < 0.6 else rng.choice(_OPEN_STAGES)
        if stage.startswith("Closed"):
            # Won deals closed at least three weeks ago, so their projects have started.
            close = _random_day(rng, HISTORY_START.date(), self.asof_day - timedelta(days=21))
            created = _business_moment(rng, close - timedelta(days=rng.randint(20, 120)))
        else:
            close = self.asof_day + timedelta(days=rng.randint(7, 150))
            created = _business_moment(rng, self.asof_day - timedelta(days=rng.randint(10, 200)))
        model = rng.choices([b for b, _ in BILLING_MODELS], weights=[w for _, w in BILLING_MODELS])[0]
        deal = Deal(id=sf_id("006", self.next_id("sf.006")), account=account,
                    name=f"{_short_name(account.name)} - {rng.choice(PROJECT_KINDS)}", stage=stage,
                    amount=rng.randint(25, 1500) * 1000, close=close, created=created, billing_model=model,
                    deal_type=rng.choice(OPPORTUNITY_TYPES), payment_terms=rng.choice(PAYMENT_TERMS))
        if deal.won:
            deal.contract_id = sf_id("800", self.next_id("sf.800"))
            deal.contract_number = f"{self.counters['sf.800']:08d}"
            deal.start = min(close + timedelta(days=rng.randint(3, 21)), self.asof_day - timedelta(days=10))
            deal.term = rng.choice((3, 4, 6, 9, 12))
            deal.end = add_months(deal.start, deal.term) - timedelta(days=1)
        return deal

    @staticmethod
    def _mark_incomplete(rng: random.Random, won: list[Deal]) -> None:
        """A few won deals lack a tax code or legal entity (so writeback validation has work)."""
        if not won:
            return
        for deal in rng.sample(won, sample_size(len(won), 0.04)):
            deal.missing_field = rng.choice(("Tax_Code__c", "Legal_Entity__c"))

    def write_salesforce(self) -> None:
        rng = self.rng("crm-write")
        contacts = [account for account in self.accounts for _ in range(rng.randint(1, 3))]
        malformed = set(rng.sample(range(len(contacts)), bad_row_count(len(contacts))))
        malformed = malformed if self.bad_rows else set()  # drawn either way: the other draws stay the same
        for account in self.accounts:
            self._write_account(rng, account)
            for deal in account.deals:
                self._write_opportunity(rng, deal)
        for index, account in enumerate(contacts):
            self._write_contact(rng, account, index in malformed)

    def _sf(self, obj: str, record_id: str, created: datetime, updated: datetime, fields: Body) -> None:
        updated = min(max(updated, created), AS_OF)
        # Every object carries the system audit fields (Object Reference, "System Fields").
        body = {"Id": record_id, **fields, "IsDeleted": False, "CreatedDate": self.sts(created),
                "CreatedById": SF_ADMIN_USER, "LastModifiedDate": self.sts(updated),
                "LastModifiedById": SF_ADMIN_USER, "SystemModstamp": self.sts(updated)}
        self.sink.add("salesforce", obj, record_id, updated, body)

    def _write_account(self, rng: random.Random, account: Account) -> None:
        updated = _business_moment(rng, _random_day(rng, account.created.date(), self.asof_day))
        won_days = [d.close for d in account.deals if d.won]
        if won_days:  # becoming a customer touches the account
            updated = max(updated, _midnight(max(won_days)) + timedelta(hours=15))
        updated = min(updated, AS_OF)
        self._sf("Account", account.id, account.created, updated, {
            "Name": account.name, "Type": "Customer" if won_days else "Prospect",
            "Industry": account.industry, "BillingCountry": account.market.country,
            "CurrencyIsoCode": account.market.currency,
            "ERP_Customer_Id__c": account.customer_id if account.customer_id and rng.random() < 0.9 else None,
            "Legal_Entity__c": account.market.subsidiary.name, "OwnerId": account.owner,
            "LastModifiedDate": self.sts(updated)})

    def _write_contact(self, rng: random.Random, account: Account, malformed: bool) -> None:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = f"{_short_name(account.name).replace(' ', '')}.{account.market.domain}".lower()
        email = f"{first}.{last}@{domain}".lower()
        if malformed:  # deliberate bad row: no "@" at all, or a domain without a dot
            local = email.split("@")[0]
            email = f"{local}.at.{domain}" if rng.random() < 0.5 else f"{local}@{domain.split('.')[0]}"
        contact_id = sf_id("003", self.next_id("sf.003"))
        created = _business_moment(rng, _random_day(rng, account.created.date(), self.asof_day))
        updated = _business_moment(rng, _random_day(rng, created.date(), self.asof_day))
        self._sf("Contact", contact_id, created, updated, {
            "AccountId": account.id, "FirstName": first, "LastName": last, "Email": email,
            "Title": rng.choice(CONTACT_TITLES)})

    def _write_opportunity(self, rng: random.Random, deal: Deal) -> None:
        market = deal.account.market
        closed = deal.stage.startswith("Closed")
        priced = closed or deal.stage in ("Proposal/Price Quote", "Negotiation/Review")
        closed_at = _business_moment(rng, deal.close)
        updated = closed_at if closed else _business_moment(
            rng, _random_day(rng, deal.created.date(), self.asof_day))
        project = deal.project
        if project is not None:
            updated = max(updated, project.created)
        fields = {
            "AccountId": deal.account.id, "Name": deal.name, "StageName": deal.stage, "Amount": deal.amount,
            "CurrencyIsoCode": market.currency, "CloseDate": deal.close.isoformat(), "IsWon": deal.won,
            "IsClosed": closed, "Probability": STAGE_PROBABILITY[deal.stage],
            "Type": deal.deal_type, "ContractId": deal.contract_id,
            "Billing_Model__c": deal.billing_model if priced else None,
            "Legal_Entity__c": market.subsidiary.name, "Tax_Code__c": market.tax_code if priced else None,
            # ~10% of ERP project ids were never written back to the CRM.
            "ERP_Project_Id__c": project.job_id if project and rng.random() < 0.9 else None,
            "Activation_Status__c": _activation_status(deal)}
        if deal.missing_field:
            fields[deal.missing_field] = None
        self._sf("Opportunity", deal.id, deal.created, updated, fields)
        if deal.won:
            self._write_contract(deal, closed_at, fields)

    def _write_contract(self, deal: Deal, closed_at: datetime, opportunity: Body) -> None:
        self._sf("Contract", deal.contract_id, closed_at, closed_at + timedelta(hours=2), {
            "AccountId": deal.account.id, "ContractNumber": deal.contract_number, "Status": "Activated",
            "StartDate": deal.start.isoformat(), "EndDate": deal.end.isoformat(), "ContractTerm": deal.term,
            "CurrencyIsoCode": opportunity["CurrencyIsoCode"], "Billing_Model__c": deal.billing_model,
            "Opportunity__c": deal.id, "Legal_Entity__c": opportunity["Legal_Entity__c"],
            "Payment_Terms__c": deal.payment_terms, "Tax_Code__c": opportunity["Tax_Code__c"],
            "Contract_Value__c": deal.amount})

    # Kantata projects -----------------------------------------------------------------
    def plan_projects(self) -> None:
        rng = self.rng("psa")
        by_region: dict[str, list[Worker]] = defaultdict(list)
        for worker in self.workers:
            by_region[worker.region].append(worker)
        won = sorted((d for a in self.accounts for d in a.deals if d.won and not d.missing_field),
                     key=lambda d: (d.close, d.id))
        # ~11% of won deals are not yet set up in the PSA: project activation has work to do.
        for deal in [d for d in won if rng.random() < 0.89] or won[:1]:
            created = _business_moment(rng, deal.close + timedelta(days=rng.randint(1, 20)))
            region = deal.account.market.subsidiary.region
            card = self.card_for(region, deal.account.market.currency, deal.start)
            project = Project(self.kantata_id("workspaces"), deal, created, card, [])
            project.team = self._pick_team(rng, project, by_region[region])
            deal.project = project
            self.projects.append(project)
        self._allocate_activity()

    def _pick_team(self, rng: random.Random, project: Project, local: list[Worker]) -> list[Worker]:
        size = min(2 + project.deal.amount // 300_000 + rng.randint(0, 2), 6)
        team: list[Worker] = []
        for _ in range(size * 4):
            pool = local if local and rng.random() < 0.8 else self.workers
            worker = rng.choice(pool)
            overlaps = worker.active_on(project.first_day) or worker.active_on(project.last_day)
            if overlaps and worker not in team:
                team.append(worker)
            if len(team) == size:
                break
        return team or [next(w for w in self.workers if w.termination is None)]

    def _allocate_activity(self) -> None:
        """Split the exact totals across projects by workdays x team size."""
        weights = [p.workdays * len(p.team) for p in self.projects]
        entries = time_entry_count(self.scale)
        for project, count in zip(self.projects, _largest_remainder(entries, weights), strict=True):
            project.entry_target = count
        expense_weights = [p.entry_target for p in self.projects]
        expenses = round(entries * EXPENSE_SHARE)
        for project, count in zip(self.projects, _largest_remainder(expenses, expense_weights), strict=True):
            project.expense_target = count
            project.schedule = _weekly_schedule(project)

    def write_workspaces(self) -> None:
        rng = self.rng("psa-write")
        for project in self.projects:
            deal = project.deal
            finished = deal.end < self.asof_day
            if finished:
                status = WORKSPACE_STATUSES["completed"]
                closed_on = min(deal.end + timedelta(days=rng.randint(1, 10)), self.asof_day)
                updated = _business_moment(rng, closed_on)
            else:
                status = WORKSPACE_STATUSES["at_risk" if rng.random() < 0.15 else "active"]
                updated = _business_moment(rng, _random_day(rng, project.created.date(), self.asof_day))
            updated = max(updated, project.created)
            self.sink.add("kantata", "workspaces", project.id, updated, {
                "id": project.id, "title": deal.name, "currency": deal.account.market.currency,
                "price_in_cents": deal.amount * 100, "start_date": deal.start.isoformat(),
                "due_date": deal.end.isoformat(), "status": dict(status),
                "archived": finished and deal.end < self.asof_day - timedelta(days=90) and rng.random() < 0.5,
                "rate_card_id": project.card.id,
                "budgeted": True, "effective_due_date": deal.end.isoformat(), "access_level": "invitation",
                "created_at": self.kts(project.created), "updated_at": self.kts(updated)})
            self._write_opportunity_reference(project)
            self._write_stories(rng, project)

    def _write_opportunity_reference(self, project: Project) -> None:
        """The workspace's link to its CRM opportunity, made with the workspace."""
        reference_id, created = self.kantata_id("external_references"), self.kts(project.created)
        self.sink.add("kantata", "external_references", reference_id, project.created, {
            "id": reference_id, "subject_type": "Workspace", "subject_id": project.id,
            "service_name": OPPORTUNITY_SERVICE, "service_model": OPPORTUNITY_MODEL,
            "service_model_ref": project.deal.id, "status": "successful", "external_link": None,
            "external_message": None, "external_status": None, "locked": False, "created_at": created,
            "last_synced_at": created, "updated_at": created})

    def _write_stories(self, rng: random.Random, project: Project) -> None:
        deal = project.deal
        for title in rng.sample(TASK_NAMES, rng.randint(2, 5)):
            due = _random_day(rng, deal.start, deal.end)
            state = "completed" if due < self.asof_day else rng.choice(("not started", "started"))
            completed = _business_moment(rng, due) if state == "completed" else None
            project.tasks.append(self._story(project, title, "task", due, state, completed, None))
        if deal.billing_model != "Time and Materials":
            self._write_milestones(rng, project)

    def _write_milestones(self, rng: random.Random, project: Project) -> None:
        deal = project.deal
        count = rng.randint(3, 5)
        budgets = _largest_remainder(deal.amount * 100, [1] * count)
        span = (deal.end - deal.start).days
        slipped = False  # milestones are sequential: once one slips, the rest wait
        titles = (*MILESTONE_NAMES[:count - 1], FINAL_MILESTONE)
        for n, (title, budget) in enumerate(zip(titles, budgets, strict=True)):
            due = deal.start + timedelta(days=span * (n + 1) // count)
            if not slipped and due < self.asof_day and rng.random() < 0.92:
                signed_off = due + timedelta(days=rng.randint(-3, 5))
                state, completed = "completed", _business_moment(rng, signed_off)
            else:
                state, completed = ("not started" if slipped else "started"), None
                slipped = True
            story_id = self._story(project, title, "milestone", due, state, completed, budget)
            project.milestones.append(Milestone(story_id, title, due, state, completed, budget))

    def _story(self, project: Project, title: str, kind: str, due: date, state: str,
               completed: datetime | None, budget: int | None) -> str:
        story_id = self.kantata_id("stories")
        completed = max(completed, project.created) if completed else None
        updated = completed or project.created
        changes = []
        if completed:  # Kantata records every state a story is set to as a story state change
            change_id = self.kantata_id("story_state_changes")
            changes.append(change_id)
            self.sink.add("kantata", "story_state_changes", change_id, completed, {
                "id": change_id, "state": "completed", "formatted_state": "Completed", "user_id": None,
                "story_id": story_id, "created_at": self.kts(completed), "updated_at": self.kts(completed)})
        self.sink.add("kantata", "stories", story_id, updated, {
            "id": story_id, "workspace_id": project.id, "title": title, "story_type": kind, "state": state,
            "due_date": due.isoformat(), "story_state_change_ids": changes,
            "budget_estimate_in_cents": budget, "archived": False, "parent_id": None,
            "created_at": self.kts(project.created),
            "updated_at": self.kts(updated)})
        return story_id

    # Time entries and expenses ----------------------------------------------------------
    def write_activity(self) -> dict[tuple[int, str], dict[tuple[str, str, int], int]]:
        """Stream entries week by week (ids grow with time, as in the real system).

        Returns approved billable minutes per (project, month) and (user, role, rate),
        for the months old enough to have been invoiced.
        """
        activity = _Activity(self)
        monday = HISTORY_START.date() - timedelta(days=HISTORY_START.date().weekday())
        pending = sorted(self.projects, key=lambda p: p.first_day)
        active: list[Project] = []
        while monday <= self.asof_day:
            first = monday.toordinal()
            while pending and pending[0].first_day <= first + 4:
                active.append(pending.pop(0))
            active = [p for p in active if p.last_day >= first]
            for project in active:
                if first in project.schedule:
                    activity.week(project, *project.schedule[first])
            monday += timedelta(days=7)
        return activity.billable

    # NetSuite masters ----------------------------------------------------------------
    def plan_erp(self) -> None:
        rng = self.rng("erp")
        with_won = [a for a in self.accounts if any(d.won for d in a.deals)]
        customers = [a for a in with_won if rng.random() < 0.9]
        if not any(p.deal.account in customers for p in self.projects):
            customers.append(self.projects[0].deal.account)  # tiny scales still need one ERP chain
        for account in with_won:
            if account in customers:
                account.customer_id = self.netsuite_id("customer")
        eligible = [p for p in self.projects if p.deal.account.customer_id]
        for project in [p for p in eligible if rng.random() < 0.89] or eligible[:1]:
            project.job_id = self.netsuite_id("job")

    def write_erp_masters(self) -> None:
        rng = self.rng("erp-write")
        customers = [a for a in self.accounts if a.customer_id]
        renamed = {a.id for a in rng.sample(customers, sample_size(len(customers), 0.05))}
        recurrency = {a.id for a in rng.sample(customers, sample_size(len(customers), 0.03))}
        for account in customers:
            first_won = min(d.close for d in account.deals if d.won)
            created = _business_moment(rng, first_won + timedelta(days=rng.randint(1, 10)))
            updated = _business_moment(rng, _random_day(rng, created.date(), self.asof_day))
            currency = account.market.currency
            if account.id in recurrency:
                currency = rng.choice([code for _, code, _, _ in CURRENCIES if code != currency])
            name = _rename(rng, account.name) if account.id in renamed else account.name
            self.sink.add("netsuite", "customer", account.customer_id, updated, _without_nulls({
                "id": account.customer_id, "entityid": f"C{account.customer_id} {name}", "companyname": name,
                "externalid": account.id, "subsidiary": account.market.subsidiary.id,
                "currency": CURRENCY_IDS[currency], "isinactive": "F", "datecreated": self.nts(created),
                "lastmodifieddate": self.nts(updated)}))
        for project in self.projects:
            if project.job_id:
                self._write_job(rng, project)

    def _write_job(self, rng: random.Random, project: Project) -> None:
        deal = project.deal
        created = min(project.created + timedelta(hours=rng.randint(1, 72)), AS_OF)
        updated = created if deal.end >= self.asof_day else _business_moment(rng, min(
            deal.end + timedelta(days=rng.randint(1, 14)), self.asof_day))
        updated = max(updated, created)
        self.sink.add("netsuite", "job", project.job_id, updated, _without_nulls({
            "id": project.job_id, "entityid": f"PRJ{project.job_id}", "companyname": deal.name,
            "externalid": deal.id, "parent": deal.account.customer_id,
            "subsidiary": deal.account.market.subsidiary.id,
            "currency": CURRENCY_IDS[deal.account.market.currency],
            "entitystatus": "Closed" if deal.end < self.asof_day else "In Progress",
            "startdate": deal.start.isoformat(), "projectedenddate": deal.end.isoformat(),
            "datecreated": self.nts(created), "lastmodifieddate": self.nts(updated)}))

    # NetSuite invoices ---------------------------------------------------------------
    def write_invoices(self, billable: dict[tuple[int, str], dict[tuple[str, str, int], int]]) -> None:
        rng = self.rng("erp-invoices")
        names = {w.user_id: w.name for w in self.workers}
        invoices: list[tuple[str, int, str, list[Body]]] = []
        for (index, month), per_user in billable.items():
            lines = [_time_line(names[user], role, minutes, rate, month)
                     for (user, role, rate), minutes in sorted(per_user.items())]
            invoices.append((f"{month}-28", index, month, lines))
        cutoff = AS_OF - timedelta(days=42)
        for index, project in enumerate(self.projects):
            for ms in project.milestones:
                if project.job_id and ms.completed_at and ms.completed_at <= cutoff:
                    issued = ms.completed_at.date().isoformat()
                    invoices.append((issued, index, issued[:7], [_milestone_line(ms)]))
        invoices.sort(key=lambda inv: (inv[0], inv[1]))
        # A few recent-style invoices were posted by the pipeline itself (at least one).
        psp = {i for i in range(len(invoices)) if rng.random() < 0.05} or {len(invoices) - 1}
        for number, (issued, index, month, lines) in enumerate(invoices):
            self._write_invoice(rng, self.projects[index], issued, month, lines, number in psp)

    def _write_invoice(self, rng: random.Random, project: Project, issued: str, month: str, lines: list[Body],
                       pipeline: bool) -> None:
        deal = project.deal
        tran_id = self.netsuite_id("transaction")
        trandate = date.fromisoformat(issued) + timedelta(days=rng.randint(3, 8))
        due = trandate + timedelta(days=int(deal.payment_terms.split()[-1]))
        created = _business_moment(rng, trandate)
        paid = due < self.asof_day - timedelta(days=10) and rng.random() < 0.92
        updated = created
        if paid:  # the payment is the invoice's last change
            updated = max(created, _business_moment(rng, due - timedelta(days=rng.randint(0, 10))))
        key = f"psp:inv:{project.id}:{month}" if pipeline and trandate < BILLING_GO_LIVE else None
        market = deal.account.market
        customer, subsidiary = deal.account.customer_id, market.subsidiary.id
        total = Decimal(0)
        for seq, line in enumerate(lines, start=1):
            total += Decimal(line["foreignamount"])
            line_key = f"{key}:{seq}" if key else None
            body = _without_nulls({"transaction": tran_id, "id": str(seq), "linesequencenumber": str(seq),
                                   "mainline": "F", "taxline": "F", "entity": customer, "subsidiary": subsidiary,
                                   **line, "custcol_ps_line_key": line_key})
            self.sink.add("netsuite", "transactionline", f"{tran_id}|{seq}", updated, body)
        # The transaction's main line (mainline = 'T', id 0): the header's line in transactionline,
        # where SuiteQL exposes the subsidiary (the transaction table does not).
        self.sink.add("netsuite", "transactionline", f"{tran_id}|0", updated, {
            "transaction": tran_id, "id": "0", "linesequencenumber": "0", "mainline": "T", "taxline": "F",
            "entity": customer, "subsidiary": subsidiary, "foreignamount": _money(total),
            "memo": f"{deal.name} - {month}"})
        self.sink.add("netsuite", "transaction", tran_id, updated, _without_nulls({
            "id": tran_id, "tranid": f"INV-{int(tran_id) - _NETSUITE_BASE['transaction']:06d}",
            "externalid": key, "type": "CustInvc", "entity": customer, "job": project.job_id,
            "subsidiary": subsidiary, "currency": CURRENCY_IDS[market.currency],
            "trandate": trandate.isoformat(), "duedate": due.isoformat(),
            "status": "Paid In Full" if paid else "Open", "foreigntotal": _money(total),
            "memo": f"{deal.name} - {month}", "createddate": self.nts(created),
            "lastmodifieddate": self.nts(updated)}))


class _Activity:
    """Generates one project's time entries and expenses for one week at a time.

    This is the hot loop (millions of rows), so moments are plain integers (seconds since
    ``base_day``) and become text or datetimes only where a row needs them.
    """

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.rng = gen.rng("activity")
        self.random = self.rng.random
        self.asof_ordinal = gen.asof_day.toordinal()
        # Bad rows are planted in weeks older than three weeks: history someone keyed wrong,
        # not this week's timesheet that the approval events work on.
        old = sum(n for p in gen.projects for days, n, _ in p.schedule.values() if self.is_old(days))
        self.only_old_bad = old > 0
        eligible = old if old else time_entry_count(gen.scale)
        self.bad = set(gen.rng("bad-rows").sample(range(eligible), bad_row_count(time_entry_count(gen.scale))))
        self.bad = self.bad if gen.bad_rows else set()  # drawn either way: the other draws stay the same
        self.eligible_index = 0
        self.base_day = HISTORY_START.date().toordinal() - 7
        self.base_moment = _midnight(date.fromordinal(self.base_day))
        self.asof = self.moment(self.asof_ordinal, AS_OF.hour * 3600)
        cutoff = (AS_OF - timedelta(days=42)).date()
        # The last month whose every day is older than ~6 weeks has been invoiced.
        self.billed_through = (cutoff.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        self.billable: dict[tuple[int, str], dict[tuple[str, str, int], int]] = defaultdict(
            lambda: defaultdict(int))
        self.project_index = {id(p): i for i, p in enumerate(gen.projects)}
        self.minutes = list(_MINUTES)
        self.week_key: int | None = None
        self.day_minutes: dict[tuple[str, int], int] = {}  # (user, day) -> minutes, this week
        self.minute_cum = list(_cumulative(_MINUTE_WEIGHTS))
        self._day_text: dict[int, str] = {}

    def moment(self, ordinal: int, seconds: int) -> int:
        return (ordinal - self.base_day) * 86_400 + seconds

    def day_text(self, ordinal: int) -> str:
        text = self._day_text.get(ordinal)
        if text is None:
            text = self._day_text[ordinal] = date.fromordinal(ordinal).isoformat()
        return text

    def wire(self, moment: int) -> str:
        """Kantata's timestamp text for a moment."""
        day, second = divmod(moment, 86_400)
        return (f"{self.day_text(day + self.base_day)}T{second // 3600:02d}:{second // 60 % 60:02d}:"
                f"{second % 60:02d}+00:00")

    def as_datetime(self, moment: int) -> datetime:
        return self.base_moment + timedelta(seconds=moment)

    def is_old(self, days: list[int]) -> bool:
        return self.asof_ordinal - days[-1] > 21

    def week(self, project: Project, days: list[int], entries: int, expenses: int) -> None:
        may_be_bad = self.is_old(days) or not self.only_old_bad
        logged = [self.time_entry(project, days, may_be_bad) for _ in range(entries)]
        self.submit("time_entries", project, days, logged)
        spent = [self.expense(project, days) for _ in range(expenses)]
        self.submit("expenses", project, days, spent)

    def submit(self, obj: str, project: Project, days: list[int], lines: list[_Line]) -> None:
        """Store the week's lines with the submissions they went on: one per person and outcome.

        Kantata approves time and expenses through submissions, one project each: a timesheet
        submission holds "a set of time entries for a specified week" and an expense report
        submission a set of expenses; a submission is pending, approved, rejected or cancelled,
        and ``current_resolution_created_at_date`` is when its current resolution (the approval
        or rejection) was made (developer.kantata.com, Timesheet Submissions / Expense Report
        Submissions). A time entry's ``approved`` flag follows its submission; ``active_submission_id``
        names an approved or pending one, ``recent_submission_id`` the latest, rejected included.
        Draws no random number, so everything else generated is unchanged.
        """
        gen, timesheets = self.gen, obj == "time_entries"
        groups: dict[tuple[str, str], list[_Line]] = {}
        for line in lines:
            if line.status == "draft":
                gen.sink.add("kantata", obj, line.record_id, self.as_datetime(line.created), line.body)
            else:
                groups.setdefault((line.body["user_id"], line.status), []).append(line)
        monday = days[0] - (days[0] - 1) % 7
        if gen.certinia is not None:
            gen.certinia.week(self, obj, project, monday, lines)
        collection = "timesheet_submissions" if timesheets else "expense_report_submissions"
        for (user_id, status), members in groups.items():
            submission_id = gen.kantata_id(collection)
            submitted = max(line.submitted for line in members)
            resolved = max(line.decided for line in members) if status in ("approved", "rejected") else None
            changed = resolved if resolved is not None else submitted
            for line in members:
                body = line.body
                body["active_submission_id"] = submission_id if status in ("submitted", "approved") else None
                body["recent_submission_id"] = submission_id
                if timesheets:
                    body["approved"] = status == "approved"
                body["updated_at"] = self.wire(changed)
                gen.sink.add("kantata", obj, line.record_id, self.as_datetime(changed), body)
            total = sum(line.cents for line in members)
            currency = project.deal.account.market.currency
            submission: Body = {
                "id": submission_id, "status": "pending" if status == "submitted" else status,
                "title": f"{'Timesheet' if timesheets else 'Expenses'} {self.day_text(monday)}",
                "comment": None, "type": "TimesheetSubmission" if timesheets else "ExpenseReportSubmission",
                "resolution_description": None, "line_item_total_in_cents": total,
                "line_item_total_formatted": f"{total / 100:,.2f} {currency}", "currency": currency,
                "current_resolution_description": None, "current_resolution_creator_id": None,
                "current_resolution_created_at_date": self.wire(resolved) if resolved is not None else None,
                "resolution_ids": [], "user_id": user_id, "workspace_id": project.id,
                "created_at": self.wire(submitted), "updated_at": self.wire(changed),
            }
            if timesheets:
                submission.update(start_date=self.day_text(monday), end_date=self.day_text(monday + 6),
                                  time_entry_ids=[line.record_id for line in members])
            else:
                submission["expense_ids"] = [line.record_id for line in members]
            gen.sink.add("kantata", collection, submission_id, self.as_datetime(changed), submission)

    def fit_day(self, project: Project, days: list[int], ordinal: int, worker: Worker,
                minutes: int) -> tuple[int, Worker, int]:
        """Where an entry goes so nobody logs more than ``DAY_CAP_MINUTES`` on a day, every
        project together: the drawn day and person if they have room, else another day of the
        week, else a teammate; when nobody has room for all of it, the least-loaded slot gets
        what fits. Deterministic and draws no random number, so everything else generated is
        unchanged. Weeks are generated in order, so only the current week is remembered."""
        week = (days[0] - 1) // 7
        if week != self.week_key:
            self.week_key, self.day_minutes = week, {}
        used = self.day_minutes
        team = [w for w in project.team if w is not worker]
        slots = [(ordinal, worker)] + [(d, worker) for d in days if d != ordinal] + \
            [(d, w) for w in team for d in [ordinal, *(d for d in days if d != ordinal)]]
        slots = [(d, w) for d, w in slots if w is worker or w.active_on(d)]
        chosen = next(((d, w) for d, w in slots if used.get((w.user_id, d), 0) + minutes <= DAY_CAP_MINUTES), None)
        if chosen is None:
            chosen = min(slots, key=lambda slot: used.get((slot[1].user_id, slot[0]), 0))
            room = DAY_CAP_MINUTES - used.get((chosen[1].user_id, chosen[0]), 0)
            minutes = max(_MINUTES[0], min(minutes, room // 15 * 15))
        used[(chosen[1].user_id, chosen[0])] = used.get((chosen[1].user_id, chosen[0]), 0) + minutes
        return chosen[0], chosen[1], minutes

    def member(self, project: Project, ordinal: int) -> Worker:
        team = project.team
        worker = team[int(self.random() * len(team))]
        if worker.active_on(ordinal):
            return worker
        return next((w for w in team if w.active_on(ordinal)), worker)

    def approval(self, ordinal: int, created: int) -> tuple[str, int | None, int]:
        """(status, approved at, changed at): submitted the next day, decided a few days after the
        week closes. ``submit`` turns these into the week's submissions."""
        random_ = self.random
        next_monday = ordinal + 7 - (ordinal - 1) % 7
        decided = self.moment(next_monday + 1 + int(random_() * 4), 8 * 3600 + int(random_() * 36_000))
        submitted = min(created + 20 * 3600, self.asof)
        roll = random_()
        if self.asof_ordinal - ordinal > 21:
            if roll < 0.02:
                return "rejected", None, decided
            if roll < 0.03:
                return "submitted", None, submitted
            return "approved", decided, decided
        if roll < 0.02 and decided < self.asof:
            return "rejected", None, decided
        if roll < 0.45 and decided < self.asof:
            return "approved", decided, decided
        if roll < 0.75:
            return "submitted", None, submitted
        return "draft", None, created

    def time_entry(self, project: Project, days: list[int], may_be_bad: bool) -> _Line:
        gen, random_ = self.gen, self.random
        ordinal = days[int(random_() * len(days))]
        worker = self.member(project, ordinal)
        minutes = self.minutes[_bisect(self.minute_cum, random_() * self.minute_cum[-1])]
        bad = may_be_bad and self.eligible_index in self.bad
        self.eligible_index += may_be_bad
        if not bad:  # a bad row is history keyed wrong, not hours anyone worked
            ordinal, worker, minutes = self.fit_day(project, days, ordinal, worker, minutes)
        day_text = self.day_text(ordinal)
        role = worker.role_on(ordinal)
        rate = project.card.rates[role]
        billable = random_() < 0.85
        created = min(self.moment(ordinal, 16 * 3600 + int(random_() * 14_400)), self.asof)
        status, approved, updated = self.approval(ordinal, created)
        month = day_text[:7]
        if status == "approved" and billable and not bad and month <= self.billed_through \
                and project.job_id and project.deal.billing_model == "Time and Materials":
            self.billable[(self.project_index[id(project)], month)][(worker.user_id, role, rate)] += minutes
        tasks = project.tasks
        entry_id = gen.kantata_id("time_entries")
        body = {
            "id": entry_id, "workspace_id": project.id, "user_id": worker.user_id,
            "story_id": tasks[int(random_() * len(tasks))] if tasks and random_() < 0.75 else None,
            "date_performed": day_text, "time_in_minutes": -minutes if bad else minutes, "billable": billable,
            "rate_in_cents": rate, "notes": NOTES[int(random_() * len(NOTES))], "approved": False,
            "currency": project.deal.account.market.currency, "taxable": False, "is_invoiced": False,
            "active_submission_id": None, "recent_submission_id": None,
            "created_at": self.wire(created), "updated_at": self.wire(created)}
        cents = rate * minutes // 60 if billable and not bad else 0
        return _Line(entry_id, body, status, updated if approved is not None or status == "rejected" else None,
                     min(created + 20 * 3600, self.asof), created, cents)

    def expense(self, project: Project, days: list[int]) -> _Line:
        gen, random_ = self.gen, self.random
        ordinal = days[int(random_() * len(days))]
        worker = self.member(project, ordinal)
        category, low, high, note = EXPENSE_CATEGORIES[int(random_() * len(EXPENSE_CATEGORIES))]
        created = min(self.moment(ordinal, 9 * 3600 + int(random_() * 43_200)), self.asof)
        status, approved, updated = self.approval(ordinal, created)
        expense_id = gen.kantata_id("expenses")
        body = {
            "id": expense_id, "workspace_id": project.id, "user_id": worker.user_id,
            "date": self.day_text(ordinal), "category": category,
            "amount_in_cents": low + int(random_() * (high - low)),
            "currency": project.deal.account.market.currency, "is_billable": random_() < 0.75, "notes": note,
            "is_invoiced": False, "reimbursable": True, "taxable": False,
            "active_submission_id": None, "recent_submission_id": None,
            "created_at": self.wire(created), "updated_at": self.wire(created)}
        return _Line(expense_id, body, status, updated if approved is not None or status == "rejected" else None,
                     min(created + 20 * 3600, self.asof), created, body["amount_in_cents"])


@dataclass(slots=True)
class _Line:
    """A generated time entry or expense waiting for the week's submissions (moments as in ``_Activity``)."""

    record_id: str
    body: Body
    status: str  # draft | submitted | approved | rejected
    decided: int | None  # when its submission was approved or rejected
    submitted: int
    created: int
    cents: int  # its share of the submission's line item total


def _cumulative(weights: Iterable[int]) -> Iterable[int]:
    total = 0
    for weight in weights:
        total += weight
        yield total


def _bisect(cumulative: list[int], point: float) -> int:
    low, high = 0, len(cumulative) - 1
    while low < high:
        mid = (low + high) // 2
        if cumulative[mid] > point:
            high = mid
        else:
            low = mid + 1
    return low


def _time_line(name: str, role: str, minutes: int, rate_cents: int, month: str) -> Body:
    hours = Decimal(minutes) / 60
    rate = Decimal(rate_cents) / 100
    return {"item": f"Professional Services - {role}", "memo": f"{name} ({role}) {month}",
            "quantity": _money(hours), "rate": _money(rate), "foreignamount": _money(hours * rate)}


def _milestone_line(milestone: Milestone) -> Body:
    amount = Decimal(milestone.budget_cents) / 100
    return {"item": "Professional Services - Milestone", "memo": f"Milestone: {milestone.title}",
            "quantity": "1.00", "rate": _money(amount), "foreignamount": _money(amount)}


def _activation_status(deal: Deal) -> str | None:
    if not deal.won:
        return None
    if deal.project is None:
        return "Not Started"
    return "Complete" if deal.project.job_id else "In Progress"


def _short_name(company: str) -> str:
    return " ".join(company.split()[:2])


def _company_name(rng: random.Random, market: Market, taken: set[str]) -> str:
    for _ in range(50):
        name = (f"{rng.choice(COMPANY_PREFIXES)} {rng.choice(COMPANY_CORES)}{rng.choice(COMPANY_TAILS)} "
                f"{rng.choice(market.legal_suffixes)}")
        if name not in taken:
            taken.add(name)
            return name
    suffix = market.legal_suffixes[0]
    name = f"{rng.choice(COMPANY_PREFIXES)} {rng.choice(COMPANY_CORES)} {len(taken) + 1} {suffix}"
    taken.add(name)
    return name


_RENAMES: tuple[Callable[[str], str], ...] = (
    str.upper,
    lambda name: name.rsplit(" ", 1)[0],  # legal suffix dropped
    lambda name: f"{name} (Billing)",
    lambda name: name.replace(" ", "  ", 1),
)


def _rename(rng: random.Random, name: str) -> str:
    return rng.choice(_RENAMES)(name)


def _drift_email(rng: random.Random, email: str) -> str:
    """The ERP/PSA copy of an address as people really key it: other case or a typo."""
    local, domain = email.split("@")
    if rng.random() < 0.5 or len(local) < 3:
        return f"{local.title()}@{domain.title()}"
    i = rng.randrange(len(local) - 1)
    swapped = local[:i] + local[i + 1] + local[i] + local[i + 2:]
    return f"{swapped if swapped != local else local + 'x'}@{domain}"


def record_counts(store: SandboxStore) -> dict[str, int]:
    """Live (not deleted) records per ``platform.object``."""
    rows = store.conn.execute(
        "SELECT platform, object, count(*) FROM records WHERE deleted = 0 GROUP BY platform, object "
        "ORDER BY platform, object").fetchall()
    return {f"{platform}.{obj}": count for platform, obj, count in rows}


def populate(store: SandboxStore, *, seed: int, scale: float,
             salesforce_packages: tuple[str, ...] = (), bad_rows: bool = True,
             psa_crm: str = "salesforce") -> dict[str, int]:
    """Generate every platform's data into ``store``; returns counts per ``platform.object``.

    ``salesforce_packages`` names the managed packages the firm's Salesforce org runs: with
    ``"certinia"`` the org also holds Certinia PSA's records (``ps_sandbox.certinia_data``).
    ``bad_rows=False`` leaves out the deliberately bad rows (everything else is the same data).
    ``psa_crm``: the CRM whose won deals the PSA's projects deliver (``PSA_CRMS``). With
    ``"hubspot"`` the firm's delivered deals and their customers are also in the HubSpot portal
    (``hubspot_data``, "delivered deals") and each Certinia project names its HubSpot deal;
    everything else generated is the same.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    if psa_crm not in PSA_CRMS:
        raise ValueError(f"psa_crm must be one of {', '.join(PSA_CRMS)}, not {psa_crm!r}")
    # Millions of short-lived dicts would trigger cyclic-GC passes over every live buffer;
    # nothing generated here forms a cycle, so collection is pure overhead.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    generator = _Generator(store, seed, scale, certinia="certinia" in salesforce_packages, bad_rows=bad_rows,
                           psa_crm=psa_crm)
    try:
        counts = generator.run()
        # Imported here: the HubSpot generator builds on this module's reference data and sink.
        from ps_sandbox import hubspot_data

        delivered = generator.projects if psa_crm == "hubspot" else []
        hubspot_counts = hubspot_data.write(store, seed=seed, scale=scale, delivered=delivered)
        counts = dict(sorted({**counts, **hubspot_counts}.items()))
    finally:
        if gc_was_enabled:
            gc.enable()
    if generator.certinia is not None:  # the org's auto-numbers continue after the generated ones
        for sobject, last in generator.certinia.finish().items():
            store.kv_set(AUTO_NUMBER_KEY.format(sobject), last)
    # Control events stamp changes with store.now(); it must never run behind the data.
    if store.now() <= AS_OF:
        store.advance_clock((AS_OF - store.now()).total_seconds() + 3600)
    meta = {"seed": seed, "scale": scale, "as_of": AS_OF.isoformat(), "counts": counts,
            "salesforce_packages": list(salesforce_packages), "psa_crm": psa_crm}
    store.kv_set(GENERATION_KV_KEY, meta)
    return counts

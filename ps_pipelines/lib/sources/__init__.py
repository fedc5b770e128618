"""One client per source platform, all implementing ``SourceClient`` (see ``base.py``)."""

from ps_pipelines.lib.sources.base import SourceClient
from ps_pipelines.lib.sources.hubspot import HubSpotClient
from ps_pipelines.lib.sources.kantata import KantataClient
from ps_pipelines.lib.sources.netsuite import NetSuiteClient
from ps_pipelines.lib.sources.salesforce import SalesforceClient
from ps_pipelines.lib.sources.workday import WorkdayClient

__all__ = ["HubSpotClient", "KantataClient", "NetSuiteClient", "SalesforceClient", "SourceClient", "WorkdayClient"]

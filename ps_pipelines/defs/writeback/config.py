"""Run configuration of a posting, shared by the batch assets and the event jobs."""

from datetime import date

from dagster import Config
from pydantic import Field

from ps_pipelines.lib.writeback.poster import PostSettings


class PostingConfig(Config):
    replay_dead: bool = Field(
        default=False, description="Also send dead transactions (after their cause was fixed).")
    max_in_flight: int = Field(default=5, ge=1, le=25, description="Calls in flight at once (NetSuite-like cap).")
    max_attempts: int = Field(default=5, ge=1, description="Attempts of one version before it is dead.")

    def settings(self) -> PostSettings:
        return PostSettings(max_in_flight=self.max_in_flight, max_attempts=self.max_attempts,
                            replay_dead=self.replay_dead)


class BillingConfig(PostingConfig):
    closed_through: str = Field(
        default="", description="Accounting periods are closed through this date (YYYY-MM-DD): "
                                "an invoice dated on or before it is invalid. Empty = none closed.")

    def closed_through_date(self) -> date | None:
        return date.fromisoformat(self.closed_through) if self.closed_through else None

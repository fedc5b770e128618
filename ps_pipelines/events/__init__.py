"""The write-back code location: event jobs and the sensors that start them (``definitions*.py``)."""

# The location's name in every workspace (dev, workspace.yaml, production).
EVENTS_LOCATION = "ps_pipelines_events"

"""The production code location: same graph, resources from environment variables (EnvVar)."""

from ps_pipelines.definitions import build_definitions

defs = build_definitions("production")

"""``dagster dev`` without its notice that ``dg dev`` supersedes it: ``dg`` is not installed
with this project, so the advice only confuses. The filter has to be set inside the
process: ``PYTHONWARNINGS`` cannot name a category from a package it has not imported yet."""

import runpy
import warnings

if __name__ == "__main__":
    from dagster import SupersessionWarning

    warnings.filterwarnings("ignore", category=SupersessionWarning)
    runpy.run_module("dagster", run_name="__main__", alter_sys=True)

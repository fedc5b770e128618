"""What dbt gives the models at compile time that sqlfluff's jinja templater lacks.

sqlfluff lints the models with its jinja templater (.sqlfluff): the dbt templater would compile
through a live profile, and some macros query the warehouse while compiling. Its dbt builtins
cover ref, source, config, is_incremental, this and return; this package adds the rest the
models and macros call, rendering the SQL dbt-duckdb would, so the linted SQL is the SQL that
runs. Nothing here touches a warehouse: `execute` is false, so macros that would read one
(ps_source_columns, ps_optional_relation) take their parse-time branch.
"""

import datetime as _datetime
import functools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import yaml

_DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project.yml"

execute = False
target = SimpleNamespace(name="dev", type="duckdb", schema="main", database="warehouse")
modules = SimpleNamespace(datetime=_datetime)
# The model being compiled: its YAML columns are not known here, so a macro that selects them
# (ps_estate_union) takes its parse-time branch.
model = SimpleNamespace(columns={})


@functools.cache
def _project_vars() -> dict[str, Any]:
    return yaml.safe_load(_DBT_PROJECT.read_text())["vars"]


def var(name: str, default: Any = None) -> Any:
    """A var of dbt_project.yml, as dbt resolves it without --vars."""
    return _project_vars().get(name, default)


def env_var(_name: str, default: Any = None) -> Any:
    """The default of an env_var: the linted SQL is the default estate's, whatever the shell sets."""
    return default


def log(*_args: Any, **_kwargs: Any) -> str:
    return ""


def _raise_compiler_error(message: str) -> None:
    raise jinja2.TemplateError(message)


exceptions = SimpleNamespace(raise_compiler_error=_raise_compiler_error)


@jinja2.pass_context
def _dispatch(context: jinja2.runtime.Context, macro_name: str, macro_namespace: str | None = None) -> Any:
    # dbt tries the adapter's implementation first, then the default one.
    for prefix in ("duckdb__", "default__"):
        macro = context.get(prefix + macro_name)
        if macro is not None:
            return macro
    raise jinja2.TemplateError(f"no implementation of {macro_name} for duckdb")


adapter = SimpleNamespace(
    dispatch=_dispatch,
    quote=lambda identifier: f'"{identifier}"',
    type=lambda: "duckdb",
    get_columns_in_relation=lambda _relation: [],
    get_relation=lambda **_kwargs: None,
)


def _concat(fields: list[str]) -> str:
    return f"concat({', '.join(fields)})"


def _dateadd(datepart: str, interval: Any, from_date_or_timestamp: str) -> str:
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def _datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}::timestamp, {second_date}::timestamp)"


def _last_day(date: str, datepart: str) -> str:
    return (
        f"cast(date_trunc('{datepart}', {date}) + interval 1 {datepart} - interval 1 day as date)"
    )


# dbt's cross-database macros (dbt.<name>), as dbt-duckdb renders them.
dbt = SimpleNamespace(
    concat=_concat,
    date_trunc=lambda datepart, date: f"date_trunc('{datepart}', {date})",
    dateadd=_dateadd,
    datediff=_datediff,
    hash=lambda field: f"md5(cast({field} as varchar))",
    last_day=_last_day,
    safe_cast=lambda field, type: f"try_cast({field} as {type})",
    split_part=lambda string_text, delimiter_text, part_number: (
        f"split_part({string_text}, {delimiter_text}, {part_number})"
    ),
    type_bigint=lambda: "bigint",
    type_boolean=lambda: "boolean",
    type_string=lambda: "varchar",
)

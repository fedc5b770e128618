"""The README tells analysts to open the published marts with ``.venv/bin/duckdb -readonly``:
the set-up must install that command, able to read what the pipeline's DuckDB writes."""

import subprocess
import sys
from pathlib import Path

import duckdb


def test_the_duckdb_command_reads_a_published_file_read_only(tmp_path: Path) -> None:
    path = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.dim_customer AS SELECT 'C1' AS customer_key")
    command = Path(sys.executable).parent / "duckdb"
    answer = subprocess.run([str(command), "-readonly", "-csv", str(path), "-c",
                             "SELECT customer_key FROM marts.dim_customer"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert answer.stdout.split() == ["customer_key", "C1"]
    refused = subprocess.run([str(command), "-readonly", str(path), "-c", "DELETE FROM marts.dim_customer"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "read-only" in (refused.stdout + refused.stderr)

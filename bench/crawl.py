"""Crawl benchmark: a generated PostgreSQL database with 5,000 tables, 100,000 columns and 1,000 views.

Times ``manage.py crawl`` (the same code path as the Celery task) three times: the first crawl of the database,
a second after changing 1% of its objects (columns added, comments changed, tables dropped and created, views
redefined), and a third of the unchanged database. Prints the figures and saves bench/results/crawl.json, each
figure with the load average (``os.getloadavg()``) around it.
Goals: first crawl <= 60 s, second crawl (1% changed) <= 10 s.

Usage: python bench/crawl.py [--tables 5000] [--columns 20] [--views 1000] [--database steward_bench_crawl]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import PG_ADMIN_URL, ROOT, bench_env, fresh_database, manage, save

TYPES = ["text", "integer", "numeric(12,2)", "timestamptz", "boolean", "varchar(64)", "bigint", "date"]
SCHEMAS = 10


def _table(i: int) -> tuple[str, str]:
    return f"s{i % SCHEMAS}", f"t_{i:05d}"


def generate(url: str, tables: int, columns: int, views: int) -> float:
    """Create the source database's objects; returns the seconds it took."""
    started = time.perf_counter()
    parts = [f"CREATE SCHEMA s{n};" for n in range(SCHEMAS)] + ["CREATE SCHEMA views;"]
    for i in range(tables):
        schema, name = _table(i)
        cols = ["id integer PRIMARY KEY"] + [
            f"c{k} {TYPES[(i + k) % len(TYPES)]}{' NOT NULL' if k % 7 == 0 else ''}" for k in range(1, columns)
        ]
        if i % 5 == 4:  # a foreign key to the previous table
            ref_schema, ref_name = _table(i - 1)
            cols.append(f"ref_id integer REFERENCES {ref_schema}.{ref_name} (id)")
            cols.pop(-2)  # keep the column count
        parts.append(f"CREATE TABLE {schema}.{name} ({', '.join(cols)});")
        if i % 10 == 0:
            parts.append(f"COMMENT ON TABLE {schema}.{name} IS 'Table {i} of the generated warehouse';")
            parts.append(f"COMMENT ON COLUMN {schema}.{name}.c1 IS 'First attribute of table {i}';")
    first_level = views - views // 10
    for j in range(views):
        if j < first_level:
            sa, ta = _table((j * 3) % tables)
            sb, tb = _table((j * 3 + 1) % tables)
            body = (
                f"SELECT a.id, a.c1, a.c2, b.c3 AS b_c3, a.c4 || '' AS c4_text FROM {sa}.{ta} a "
                f"JOIN {sb}.{tb} b ON b.id = a.id"
            )
        else:
            body = f"SELECT id, c1, b_c3 FROM views.v_{j % first_level:05d} WHERE c2 IS NOT NULL"
        parts.append(f"CREATE VIEW views.v_{j:05d} AS {body};")
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("\n".join(parts).encode())
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def change_one_percent(url: str, tables: int, views: int) -> dict[str, int]:
    """Change about 1% of the objects: columns added, comments changed, tables dropped and created, views
    redefined (second-level views, which nothing depends on)."""
    objects = tables + views
    n = max(1, objects // 100)
    added, commented, dropped, created = n // 3, n // 4, n // 6, n // 12
    redefined = n - added - commented - dropped - created
    statements = []
    for k in range(added):
        schema, name = _table(7 + 97 * k)
        statements.append(f"ALTER TABLE {schema}.{name} ADD COLUMN added_{k} text")
    for k in range(commented):
        schema, name = _table(11 + 89 * k)
        statements.append(f"COMMENT ON TABLE {schema}.{name} IS 'Changed comment {k}'")
    used = set()
    first_level = views - views // 10
    for j in range(first_level):
        used |= {(j * 3) % tables, (j * 3 + 1) % tables}
    candidates = [i for i in range(tables) if i not in used and i % 5 != 3 and i % 5 != 4]  # no view or FK needs it
    for i in candidates[:dropped]:
        schema, name = _table(i)
        statements.append(f"DROP TABLE {schema}.{name}")
    for k in range(created):
        statements.append(f"CREATE TABLE s0.new_{k} (id integer PRIMARY KEY, payload text, at timestamptz)")
    for k in range(redefined):
        j = first_level + k
        statements.append(
            f"DROP VIEW views.v_{j:05d}; "
            f"CREATE VIEW views.v_{j:05d} AS SELECT id, c1, b_c3 FROM views.v_{(j + 1) % first_level:05d}"
        )
    with psycopg.connect(url, autocommit=False) as conn:
        for statement in statements:
            conn.execute(statement.encode())
        conn.commit()
    return {"columns_added": added, "comments": commented, "dropped": dropped, "created": created, "views": redefined}


def crawl(env: dict[str, str]) -> dict[str, object]:
    load_before = os.getloadavg()
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "manage.py", "crawl", "bench", "-v0"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"crawl failed:\n{out.stdout}\n{out.stderr}")
    line = out.stdout.strip().splitlines()[-1]
    match = re.search(
        r"in ([\d.]+) s: (\d+) created, (\d+) updated, (\d+) unchanged, (\d+) removed, (\d+) lineage", line
    )
    if not match:
        raise SystemExit(f"unexpected summary: {line}")
    seconds, created, updated, unchanged, removed, events = match.groups()
    result = {
        "crawl_s": float(seconds),
        "command_wall_s": round(wall, 2),
        "created": int(created),
        "updated": int(updated),
        "unchanged": int(unchanged),
        "removed": int(removed),
        "lineage_events": int(events),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"  {line}  (command {wall:.1f} s, load {result['loadavg_after'][0]})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--views", type=int, default=1000)
    parser.add_argument("--database", default="steward_bench_crawl")
    args = parser.parse_args()

    source_db = f"{args.database}_source"
    source_url = fresh_database(source_db)
    print(f"Generating {args.tables} tables x {args.columns} columns and {args.views} views in {source_db} ...")
    generated_s = generate(source_url, args.tables, args.columns, args.views)
    print(f"  generated in {generated_s:.1f} s")

    state = tempfile.mkdtemp(prefix="steward-bench-crawl-")
    for folder in ("queue", "processed", "control"):
        (Path(state) / "broker" / folder).mkdir(parents=True, exist_ok=True)
    # The crawl's queued work (search indexing) goes to a broker in a temporary directory: no worker is timed.
    env = {**bench_env(fresh_database(args.database), STEWARD_STATE_DIR=state), "CELERY_BROKER_URL": "filesystem://"}
    manage(env, "migrate", "-v0")
    host, port = "127.0.0.1", PG_ADMIN_URL.rsplit(":", 1)[1].split("/")[0]
    user, password = PG_ADMIN_URL.split("://", 1)[1].split("@", 1)[0].split(":", 1)
    manage(
        env,
        "shell",
        "-c",
        "from sources.services import source_create; from django.contrib.auth.models import Group, User; "
        "u = User.objects.create_user('bench-steward'); "
        "u.groups.add(Group.objects.get_or_create(name='data-steward')[0]); "
        f"source_create(actor=u, data={{'name': 'bench', 'kind': 'postgres', "
        f"'config': {{'host': '{host}', 'port': {port}, 'database': '{source_db}'}}, "
        f"'credentials': {{'user': '{user}', 'password': '{password}'}}}})",
    )
    with psycopg.connect(source_url) as conn:
        columns = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema LIKE 's%' OR table_schema = 'views'"
        ).fetchone()
    print("First crawl ...")
    first = crawl(env)
    print("Changing 1% of the objects ...")
    changed = change_one_percent(source_url, args.tables, args.views)
    print(f"  {changed}")
    print("Second crawl (1% changed) ...")
    second = crawl(env)
    print("Third crawl (nothing changed) ...")
    third = crawl(env)
    result = {
        "source": {
            "tables": args.tables,
            "columns": columns[0] if columns else None,
            "views": args.views,
            "generate_s": round(generated_s, 1),
        },
        "first_crawl": {**first, "goal_s": 60},
        "changed": changed,
        "second_crawl": {**second, "goal_s": 10},
        "unchanged_crawl": third,
    }
    path = save("crawl", result)
    print(
        f"first crawl {first['crawl_s']} s (goal 60), second crawl {second['crawl_s']} s (goal 10), "
        f"unchanged {third['crawl_s']} s; load {os.getloadavg()[0]:.2f}; saved {path.relative_to(ROOT)}"
    )
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in (source_db, args.database):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

"""The official openlineage-java client (what Spark and Flink use) against a live Steward (issue 17).

The client comes from Maven Central; the test builds a tiny program (tests/lineage/java/) outside the
repository, under ~/.cache/steward-openlineage-java (Maven's downloads under ~/.cache/steward-maven), and runs
it against the development server the tests start. With ``compression: gzip`` the client streams each event
with ``Transfer-Encoding: chunked`` and no ``Content-Length``, which Steward refused before issue 17.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from accounts.services import token_create
from lineage.models import Edge, LineageEvent
from tests.conftest import make_producer, make_user
from tests.lineage.events import NS, complete

SOURCE = Path(__file__).parent / "java"
BUILD = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "steward-openlineage-java"
REPO = BUILD.parent / "steward-maven"


@pytest.fixture(scope="session")
def java_client() -> list[str]:
    """The command running the program (built once; rebuilt when its sources change)."""
    for tool in ("java", "javac", "mvn"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the openlineage-java client test needs a JDK and Maven")
    (BUILD / "src/main/java").mkdir(parents=True, exist_ok=True)
    stamp = (SOURCE / "pom.xml").read_text() + (SOURCE / "EmitEvents.java").read_text()
    built = (BUILD / "classes/EmitEvents.class").exists() and (BUILD / "stamp").exists()
    if not built or (BUILD / "stamp").read_text() != stamp:
        shutil.copy(SOURCE / "pom.xml", BUILD / "pom.xml")
        shutil.copy(SOURCE / "EmitEvents.java", BUILD / "src/main/java/EmitEvents.java")
        subprocess.run(
            ["mvn", "-q", "-B", f"-Dmaven.repo.local={REPO}", "dependency:build-classpath", "-Dmdep.outputFile=cp.txt"],
            cwd=BUILD,
            check=True,
            timeout=900,
        )
        classpath = (BUILD / "cp.txt").read_text().strip()
        subprocess.run(
            ["javac", "-d", "classes", "-cp", classpath, "src/main/java/EmitEvents.java"], cwd=BUILD, check=True
        )
        (BUILD / "stamp").write_text(stamp)
    classpath = (BUILD / "cp.txt").read_text().strip()
    return ["java", "-cp", f"{BUILD / 'classes'}:{classpath}", "EmitEvents"]


def spark_event(job: str, minute: int) -> dict:
    """A COMPLETE event with a Spark-sized plan facet (~40 kB: many chunks on the wire)."""
    event = complete(job, ["raw"], ["clean"], when=f"2026-01-01T12:{minute:02d}:00Z")
    event["run"]["facets"]["spark.logicalPlan"] = {
        "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.55.0/integration/spark",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/LogicalPlanFacet.json",
        "plan": [{"class": "org.apache.spark.sql.catalyst.plans.logical.Project", "num-children": 1}] * 600,
    }
    return event


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_the_official_java_client_sends_events_that_land(live_server, java_client, tmp_path, compression):
    producer = make_producer(make_user("svc-spark"), NS, "etl")
    token = token_create(actor=producer, user=producer, name="spark", scopes=["lineage:write"])[1]
    files = []
    for i, job in enumerate(["spark_orders", "spark_customers"]):
        path = tmp_path / f"{job}.json"
        path.write_text(json.dumps(spark_event(job, i + 1)))
        files.append(str(path))
    done = subprocess.run(
        [*java_client, live_server.url, token, compression, *files], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert LineageEvent.objects.count() == 2
    assert set(Edge.objects.filter(valid_to__isnull=True).values_list("job__name", flat=True)) == {
        "spark_orders",
        "spark_customers",
    }

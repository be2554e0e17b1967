"""Demo lineage over the demo catalog: pipelines as OpenLineage events, a declassification, training runs.

Per domain: each source table is exported to the data lake (with column lineage), the domain's lake files
are aggregated into a mart, and customer-facing marts feed a customer 360 view that trains the demo models.
The mart jobs declare their column lineage too: a summary keeps times, categories, amounts and row counts, never
card numbers or personal details, so ``transactions.raw`` stops at the lake and ``marts.customer_360`` (tagged
``customer``) stays requestable under the policy's toxic combination ``customer`` + ``transactions.raw``.
Deterministic and idempotent (events are keyed by content; run ids are derived from names), except the
retraining of ``RETRAINED`` (governance/demo.py emits it at load time, after the trainer's grant).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from catalog.demo import DOMAINS, MODELS, training_run_id
from catalog.models import Dataset
from lineage.models import Declassification, Job
from lineage.propagation import drain
from lineage.services.declassify import declassification_decide, declassification_request
from lineage.services.ingest import ingest
from lineage.services.producers import namespace_producer_assign

__all__ = ["RETRAINED", "load_demo_lineage", "training_events"]

PG = "postgres://warehouse.internal:5432"
LAKE = "s3://datalake"
PRODUCER = "https://steward.example/demo"
START = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)

# The model version retrained at load time, once its trainer holds a grant on its input (a green reconstruction).
RETRAINED = ("churn-predictor", 3)

# A summary column and the kinds of source column it is computed from (by name); anything else is dropped.
_PERIOD = ("_at", "ts", "date", "period")
_SEGMENT = ("segment", "channel", "region", "country", "status", "account", "cost_centre", "carrier", "currency")
_VALUE = ("amount", "score", "quantity", "salary")


def _summary_columns(domain: str, file: str, id_column: str, cols: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Column lineage of one lake file into its domain's summary: rows counted by id, times, categories, amounts.

    The CRM summary also counts reachable contacts (distinct e-mail addresses): the declassification below says
    no address survives that count.
    """
    counted = {id_column, "email"} if domain == "crm" else {id_column}
    period = [c for c in cols if c.endswith(_PERIOD)]
    segment = [c for c in cols if c in _SEGMENT]
    value = [c for c in cols if c in counted or c.endswith(_VALUE)]
    mapped = {"period": period, "segment": segment, "value": value}
    return {out: [(LAKE, file, c) for c in srcs] for out, srcs in mapped.items() if srcs}


def _run_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "https://steward.example/demo/run/" + "/".join(parts)))


def _ds(namespace: str, name: str, fields: list[str] | None = None, columns: dict | None = None) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if fields:
        facets["schema"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [{"name": f, "type": ""} for f in fields],
        }
    if columns:
        facets["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
            "fields": {
                out: {"inputFields": [{"namespace": ns, "name": n, "field": f} for ns, n, f in srcs]}
                for out, srcs in columns.items()
            },
        }
    return {"namespace": namespace, "name": name, "facets": facets}


def _events(job: str, run: str, when: datetime, inputs: list[dict], outputs: list[dict]) -> list[dict[str, Any]]:
    common = {
        "run": {"runId": run, "facets": {}},
        "job": {"namespace": "demo-airflow", "name": job, "facets": {}},
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    return [
        {**common, "eventType": "START", "eventTime": when.isoformat(), "inputs": inputs, "outputs": []},
        {
            **common,
            "eventType": "COMPLETE",
            "eventTime": (when + timedelta(minutes=7)).isoformat(),
            "inputs": inputs,
            "outputs": outputs,
        },
    ]


def _fields(namespace: str, name: str) -> list[str]:
    ds = Dataset.objects.filter(namespace=namespace, name=name).first()
    return list(ds.fields.order_by("ordinal").values_list("name", flat=True)) if ds else []


def _pipeline_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    marts: dict[str, dict] = {}
    for day in range(3):
        when = START + timedelta(days=day)
        for domain, spec in DOMAINS.items():
            lake_inputs, mart_columns = [], defaultdict(list)
            for entity in spec["entities"]:
                src, dst = f"{domain}.public.{entity}", f"curated/{domain}/{entity}"
                cols = [c for c in _fields(PG, src) if c in set(_fields(LAKE, dst))] or _fields(PG, src)
                if not cols:
                    continue
                out = _ds(LAKE, dst, cols, {c: [(PG, src, c)] for c in cols})
                events += _events(
                    f"export_{domain}_{entity}",
                    _run_id("export", domain, entity, str(day)),
                    when,
                    [_ds(PG, src)],
                    [out],
                )
                lake_inputs.append(_ds(LAKE, dst))
                for out_col, srcs in _summary_columns(domain, dst, f"{entity.rstrip('s')}_id", cols).items():
                    mart_columns[out_col] += srcs
            # On the first day the mart also read a scratch table it no longer reads (history to look at).
            inputs = lake_inputs + ([_ds(PG, f"{domain}.scratch.tmp_extract")] if day == 0 else [])
            mart = _ds(PG, f"marts.{domain}_summary", ["period", "segment", "measure", "value"], dict(mart_columns))
            marts[domain] = mart
            events += _events(
                f"mart_{domain}_summary", _run_id("mart", domain, str(day)), when + timedelta(hours=1), inputs, [mart]
            )
        summary = {d: f"marts.{d}_summary" for d in ("crm", "sales", "web")}
        c360 = _ds(
            PG,
            "marts.customer_360",
            ["customer_id", "segment", "lifetime_value", "churn_risk"],
            {
                "segment": [(PG, summary["crm"], "segment"), (PG, summary["sales"], "segment")],
                "lifetime_value": [(PG, summary["sales"], "value")],
                "churn_risk": [(PG, summary["crm"], "value"), (PG, summary["web"], "value")],
            },
        )
        feeders = [_ds(PG, f"marts.{d}_summary") for d in ("crm", "sales", "web") if d in marts]
        events += _events("build_customer_360", _run_id("c360", str(day)), when + timedelta(hours=2), feeders, [c360])
    for name, _, _, _, n_versions in MODELS:
        for v in range(1, n_versions + 1):
            if (name, v) != RETRAINED:
                events += training_events(name, v, START + timedelta(days=2, hours=3 + v))
    return events


def training_events(name: str, version: int, when: datetime, ended: datetime | None = None) -> list[dict[str, Any]]:
    """The training run of a demo model version: it reads ``marts.customer_360`` and writes the artifact."""
    events = _events(
        f"train_{name}",
        str(training_run_id(name, version)),
        when,
        [_ds(PG, "marts.customer_360")],
        [_ds("s3://models", f"{name}/{version}/model.bin")],
    )
    if ended is not None:
        events[1]["eventTime"] = ended.isoformat()
    return events


def load_demo_lineage(*, progress: Callable[[str], None] = lambda msg: None) -> dict[str, int]:
    stella, priya = User.objects.get(username="stella"), User.objects.get(username="priya")
    ada, airflow = User.objects.get(username="ada"), User.objects.get(username="svc-airflow")
    events = _pipeline_events()
    with transaction.atomic():
        # The pipelines' producer: a service account the admin allows on the namespaces it writes.
        for namespace in ("demo-airflow", PG, LAKE, "s3://models"):
            namespace_producer_assign(actor=ada, namespace=namespace, username=airflow.username)
        for start in range(0, len(events), 500):
            ingest(actor=airflow, events=events[start : start + 500], batch=True)
        progress(f"{len(events)} lineage events, {Job.objects.count()} jobs")
        job = Job.objects.filter(name="mart_crm_summary").first()
        if job is not None and not Declassification.objects.filter(job=job).exists():
            request = declassification_request(
                actor=priya,
                job_id=job.pk,
                tag_keys=["pii.email"],
                justification="The CRM summary counts customers per segment and month; no e-mail address survives.",
            )
            declassification_decide(actor=stella, pk=request.pk, approve=True, reason="Reviewed the aggregation.")
            progress("1 approved declassification (pii.email stops at mart_crm_summary)")
    result = drain()
    progress(f"propagation: {result.added} propagated tags over {result.region} datasets")
    return {"events": len(events), "jobs": Job.objects.count()}

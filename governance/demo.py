"""Demo access requests and grants over the demo catalog (idempotent): something in every state to look at.

sam (a data scientist) holds an auto-approved C1 grant and an owner-approved C2 grant, and waits for a C3 request
(olive and priya's queues) and a C4 request (hugo, priya and stella's queues). The policy is migration 0004's.

Compliance: dana trains the demo models on ``marts.customer_360``. Their September training runs predate any grant
of hers, so their results reconstruct red on purpose ("dana held no valid grant on marts.customer_360 at training
time"); at load time she requests and is granted model-training access and retrains ``churn-predictor`` v3
(lineage/demo.py ``RETRAINED``), so that model's results reconstruct green.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset, Deployment, ModelVersion
from catalog.services import deployment_create, results_ingest
from governance.choices import RequestState
from governance.models import AccessRequest
from governance.services.access_requests import access_request_approve, access_request_create
from lineage.demo import RETRAINED, training_events
from lineage.services.ingest import ingest

__all__ = ["load_demo_compliance", "load_demo_governance"]

PG = "postgres://warehouse.internal:5432"

# (dataset name, purpose, duration, approvers who approve now)
REQUESTS = [
    ("web.public.page_views", "analytics", timedelta(days=30), []),
    ("finance.public.ledger", "reporting", timedelta(days=14), ["olive"]),
    ("crm.public.contacts", "model-training", timedelta(days=7), []),
    ("hr.public.employees", "incident-response", timedelta(hours=8), []),
]


def load_demo_governance(*, progress: Callable[[str], None] = lambda msg: None) -> dict[str, int]:
    """Create sam's demo requests once (after the demo catalog and lineage, so levels are final)."""
    sam = User.objects.filter(username="sam").first()
    if sam is None or AccessRequest.objects.filter(requester=sam).exists():
        return {"requests": 0}
    made = 0
    with transaction.atomic():
        for name, purpose, duration, approvers in REQUESTS:
            dataset = Dataset.objects.filter(namespace=PG, name=name).first()
            if dataset is None:
                continue
            request = access_request_create(
                actor=sam,
                datasets=[dataset.pk],
                purpose=purpose,
                justification=f"Demo: {purpose.replace('-', ' ')} on {name}.",
                duration=duration,
            )
            for username in approvers:
                access_request_approve(actor=User.objects.get(username=username), request=request)
            made += 1
    progress(f"{made} access requests by sam (two granted, two awaiting approval)")
    return {"requests": made}


def _retrain_with_grant(dana: User) -> bool:
    """dana obtains model-training access to the training input, then retrains ``RETRAINED`` (now, so in her grant)."""
    name, version = RETRAINED
    dataset = Dataset.objects.filter(namespace=PG, name="marts.customer_360").first()
    if dataset is None:
        return False
    request = access_request_create(
        actor=dana,
        datasets=[dataset.pk],
        purpose="model-training",
        justification=f"Demo: retraining {name} v{version} on the customer 360 view.",
        duration=timedelta(days=7),
    )
    for username in ("olive", "priya", "stella"):
        if request.state != RequestState.PENDING:
            break
        access_request_approve(actor=User.objects.get(username=username), request=request)
        request.refresh_from_db()
    if request.state != RequestState.APPROVED:
        return False
    started = timezone.now()
    ingest(
        actor=User.objects.get(username="svc-airflow"),
        events=training_events(name, version, started, ended=started + timedelta(milliseconds=1)),
        batch=True,
    )
    return True


def load_demo_compliance(*, progress: Callable[[str], None] = lambda msg: None) -> dict[str, int]:
    """Deploy each model's production version and record a few results, so /compliance/ has something to show."""
    dana = User.objects.filter(username="dana").first()
    if dana is None or Deployment.objects.exists():
        return {"deployments": 0, "results": 0}
    deployed = recorded = 0
    with transaction.atomic():
        if _retrain_with_grant(dana):
            name, version = RETRAINED
            progress(f"dana granted model-training on marts.customer_360; {name} v{version} retrained (green)")
        for mv in ModelVersion.objects.filter(stage="production").select_related("model").order_by("model__name"):
            # Deployed now, after the versions were registered, so a reconstruction finds them in history.
            deployment = deployment_create(actor=dana, model_version=mv, environment="production")
            deployed += 1
            records = [
                {
                    "model": str(mv.model_id),
                    "produced_at": (deployment.deployed_from + timedelta(microseconds=i + 1)).isoformat(),
                    "input_ref": f"demo://{mv.model.name}/case-{i}",
                    "output_digest": f"sha256:{i:064x}",
                }
                for i in range(3)
            ]
            recorded += results_ingest(actor=dana, records=records).created
    progress(f"{deployed} deployments and {recorded} result records (reconstruct them at /compliance/)")
    return {"deployments": deployed, "results": recorded}

"""A generated demo catalog (no download): users in every role, tags, ~200 datasets on 3 platforms, models.

Deterministic (seeded) and idempotent: loading twice leaves the same state.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction

from catalog import services
from catalog.models import MLModel, ModelVersion, Tag
from catalog.validation import ProblemCollector, parse_dataset
from steward.identity import Role

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "MODELS", "load_demo_catalog", "training_run_id"]

DEMO_PASSWORD = "steward-demo"

# username -> (roles, extra groups, full name)
DEMO_USERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "ada": ((Role.ADMIN,), (), "Ada Admin"),
    "stella": ((Role.DATA_STEWARD,), (), "Stella Steward"),
    "priya": ((Role.PRIVACY_OFFICER,), (), "Priya Privacy"),
    "carl": ((Role.COMPLIANCE_OFFICER,), (), "Carl Compliance"),
    "olive": ((Role.DATA_OWNER,), ("sales-eng",), "Olive Owner"),
    "hugo": ((Role.DATA_OWNER,), ("hr-analytics",), "Hugo HR"),
    "dana": ((Role.DATA_SCIENTIST,), ("sales-eng",), "Dana Scientist"),
    "sam": ((Role.DATA_SCIENTIST,), (), "Sam Scientist"),
    "svc-airflow": ((Role.LINEAGE_PRODUCER,), (), "Airflow (service account)"),
}

TAGS = [
    ("pii.email", "An e-mail address", "C3"),
    ("pii.phone", "A telephone number", "C3"),
    ("pii.name", "A person's name", "C3"),
    ("pii.address", "A postal address", "C3"),
    ("pii.national_id", "A national identity or social security number", "C4"),
    ("health", "Health or medical information (special category)", "C4"),
    ("customer", "Describes customers", ""),
    ("transactions.raw", "Unaggregated payment transactions", "C2"),
    ("finance", "Financial reporting data", "C2"),
    ("derived", "Derived or aggregated data", ""),
    ("gold", "Curated, documented and tested", ""),
]

# Quality labels describe one dataset; they do not flow downstream.
NON_PROPAGATING = {"derived", "gold"}

# Column name -> tags it carries in the demo.
COLUMN_TAGS = {
    "email": ["pii.email"],
    "phone": ["pii.phone"],
    "full_name": ["pii.name"],
    "address": ["pii.address"],
    "national_id": ["pii.national_id"],
    "diagnosis_code": ["health"],
    "card_number": ["transactions.raw"],
}

DOMAINS: dict[str, dict[str, Any]] = {
    "sales": {
        "entities": ["orders", "order_items", "customers", "invoices", "refunds", "quotes", "discounts", "payments"],
        "columns": [
            "order_id",
            "customer_id",
            "email",
            "amount",
            "currency",
            "created_at",
            "status",
            "channel",
            "card_number",
            "region",
        ],
        "owners": ["group:sales-eng", "olive"],
        "tags": ["customer"],
    },
    "crm": {
        "entities": ["contacts", "accounts", "leads", "opportunities", "campaigns", "segments"],
        "columns": ["contact_id", "full_name", "email", "phone", "address", "segment", "score", "updated_at"],
        "owners": ["group:sales-eng"],
        "tags": ["customer"],
    },
    "finance": {
        "entities": ["ledger", "budgets", "forecasts", "cost_centres", "revenue_daily", "fx_rates"],
        "columns": ["entry_id", "account", "amount", "currency", "period", "cost_centre", "booked_at"],
        "owners": ["olive"],
        "tags": ["finance"],
    },
    "hr": {
        "entities": ["employees", "salaries", "absences", "occupational_health", "reviews"],
        "columns": ["employee_id", "full_name", "national_id", "salary", "diagnosis_code", "manager_id", "start_date"],
        "owners": ["group:hr-analytics", "hugo"],
        "tags": [],
    },
    "web": {
        "entities": ["page_views", "sessions", "clicks", "searches", "experiments", "errors"],
        "columns": ["event_id", "session_id", "url", "referrer", "user_agent", "ts", "country"],
        "owners": ["olive"],
        "tags": [],
    },
    "logistics": {
        "entities": ["shipments", "warehouses", "stock_levels", "carriers", "returns"],
        "columns": ["shipment_id", "warehouse_id", "sku", "quantity", "address", "shipped_at", "carrier"],
        "owners": ["hugo"],
        "tags": [],
    },
}

PLATFORMS = [
    ("postgres://warehouse.internal:5432", lambda d, e, v: f"{d}.public.{e}{v}", "table"),
    ("s3://datalake", lambda d, e, v: f"curated/{d}/{e}{v}", "parquet files"),
    ("kafka://events.internal:9092", lambda d, e, v: f"{d}.{e}{v}.v1", "topic"),
]

TYPES = {
    "id": "bigint",
    "at": "timestamp",
    "date": "date",
    "amount": "numeric(12,2)",
    "salary": "numeric(12,2)",
    "quantity": "integer",
    "score": "double precision",
}


def _column_type(name: str) -> str:
    for suffix, kind in TYPES.items():
        if name.endswith(suffix):
            return kind
    return "text"


def _users() -> dict[str, User]:
    users = {}
    for username, (roles, groups, full_name) in DEMO_USERS.items():
        first, _, last = full_name.partition(" ")
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@steward.example", "first_name": first, "last_name": last},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = Role.ADMIN in roles
            user.is_superuser = Role.ADMIN in roles
            user.save()
        for name in (*roles, *groups):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        users[username] = user
    return users


def _dataset_items(rng: random.Random) -> list[dict[str, Any]]:
    items = []
    for domain, spec in DOMAINS.items():
        for entity in spec["entities"]:
            for namespace, naming, kind in PLATFORMS:
                for variant in ("", "_history", "_daily", "_snapshot", "_v2"):
                    if variant and rng.random() < 0.78:
                        continue
                    n_cols = rng.randint(4, len(spec["columns"]))
                    columns = [f"{entity.rstrip('s')}_id", *rng.sample(spec["columns"], n_cols)]
                    fields = []
                    for col in dict.fromkeys(columns):
                        fields.append(
                            {
                                "name": col,
                                "type": _column_type(col),
                                "tags": COLUMN_TAGS.get(col, []),
                                "description": col.replace("_", " ").capitalize() + ".",
                            }
                        )
                    tags = list(spec["tags"])
                    if variant in ("_daily",):
                        tags.append("derived")
                    if rng.random() < 0.15:
                        tags.append("gold")
                    items.append(
                        {
                            "namespace": namespace,
                            "name": naming(domain, entity, variant),
                            "description": f"{entity.replace('_', ' ').capitalize()} from the {domain} domain"
                            f" ({kind}{', ' + variant.strip('_') if variant else ''}).",
                            "fields": fields,
                            "owners": spec["owners"],
                            "tags": tags,
                        }
                    )
    return items


MODELS = [
    ("churn-predictor", "Predicts which customers will leave in the next 90 days.", ["customer"], "sklearn", 3),
    ("fraud-detector", "Scores card transactions for fraud in real time.", ["transactions.raw"], "xgboost", 2),
    ("demand-forecast", "Forecasts daily demand per SKU and warehouse.", [], "prophet", 2),
]


def training_run_id(model: str, version: int) -> uuid.UUID:
    """The OpenLineage runId of a demo model version's training run (the lineage demo emits that run)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://steward.example/demo/train/{model}/{version}")


def _models(users: dict[str, User]) -> int:
    created = 0
    for name, description, tags, framework, n_versions in MODELS:
        model = MLModel.objects.filter(name=name).first()
        if model is None:
            model = services.model_create(
                actor=users["dana"], name=name, description=description, tags=tags, owners=["dana", "group:sales-eng"]
            )
            created += 1
        for v in range(1, n_versions + 1):
            if ModelVersion.objects.filter(model=model, version=str(v)).exists():
                continue
            digest = hashlib.sha256(f"{name}:{v}".encode()).hexdigest()
            services.model_version_create(
                actor=users["dana"],
                model=model,
                version=str(v),
                artifact_uri=f"s3://models/{name}/{v}/model.bin",
                artifact_digest=f"sha256:{digest}",
                image_digest=f"sha256:{hashlib.sha256(f'img:{name}:{v}'.encode()).hexdigest()}",
                code_commit=digest[:12],
                framework=framework,
                parameters={"seed": v, "max_depth": 4 + v},
                metrics={"auc": round(0.7 + 0.04 * v, 3)},
                stage="production" if v == n_versions else "archived",
                training_run_id=training_run_id(name, v),
            )
    return created


def load_demo_catalog(*, progress: Callable[[str], None] = lambda msg: None, seed: int = 42) -> dict[str, int]:
    """Create (or refresh) the demo users, tags, datasets and models."""
    rng = random.Random(seed)
    with transaction.atomic():
        users = _users()
        progress(f"{len(users)} users (password {DEMO_PASSWORD!r})")
        for key, description, level in TAGS:
            if not Tag.objects.filter(key=key).exists():
                services.tag_create(
                    actor=users["stella"],
                    key=key,
                    description=description,
                    implied_level=level,
                    propagates=key not in NON_PROPAGATING,
                )
        progress(f"{len(TAGS)} tags")
        items = _dataset_items(rng)
        problems = ProblemCollector()
        specs = [parse_dataset(item, f"datasets[{i}]", problems) for i, item in enumerate(items)]
        problems.raise_if_any()
        result = services.dataset_bulk_upsert(actor=users["stella"], specs=specs)  # type: ignore[arg-type]
        progress(f"{len(result.ids)} datasets ({len(result.created)} new)")
        made = _models(users)
        progress(f"{len(MODELS)} models ({made} new)")
    return {"users": len(users), "datasets": len(result.ids), "models": len(MODELS)}

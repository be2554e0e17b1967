"""Steward's Python SDK: ``StewardClient`` (typed methods over the HTTP API) and the ``steward`` command.

Installable on its own, without Django: ``pip install ./steward_client`` (docs/client.md).
"""

from steward_client.client import StewardClient, __version__
from steward_client.config import Config, load_config
from steward_client.errors import (
    AuthenticationError,
    ConflictError,
    FieldError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    StewardConnectionError,
    StewardError,
    ValidationError,
)
from steward_client.models import (
    AccessRequest,
    ComplianceReport,
    Dataset,
    DatasetTags,
    Grant,
    IngestResult,
    SearchResults,
    Tag,
    Workspace,
)
from steward_client.push import PushError, PushSummary, push_jsonl

__all__ = [
    "AccessRequest",
    "AuthenticationError",
    "ComplianceReport",
    "Config",
    "ConflictError",
    "Dataset",
    "DatasetTags",
    "FieldError",
    "Grant",
    "IngestResult",
    "NotFoundError",
    "PermissionDeniedError",
    "PushError",
    "PushSummary",
    "SearchResults",
    "ServerError",
    "StewardClient",
    "StewardConnectionError",
    "StewardError",
    "Tag",
    "ValidationError",
    "Workspace",
    "__version__",
    "load_config",
    "push_jsonl",
]

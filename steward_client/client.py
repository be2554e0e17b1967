"""``StewardClient``: typed methods over Steward's HTTP API (``/api/v1/``), with the token sent as
``Authorization: Bearer stw_...``.

Lists are iterators that follow the server's cursor pages (``next`` links) as they are consumed. Errors are
raised as ``StewardError`` subclasses carrying the HTTP status, the server's code and message, and each field
it named. Lineage events are retried on connection errors and 5xx answers: the server deduplicates events, so a
retried batch that had in fact been stored answers ``duplicate`` instead of storing it twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urljoin

import requests

from steward_client.errors import StewardConnectionError, StewardError, error_from_response
from steward_client.models import (
    AccessRequest,
    ComplianceReport,
    Dataset,
    DatasetTags,
    Grant,
    IngestResult,
    Model,
    SearchResults,
    Tag,
    Workspace,
)

__all__ = ["DEFAULT_TIMEOUT", "MAX_BATCH", "StewardClient"]

__version__ = "0.1.0"

DEFAULT_TIMEOUT = 30.0
MAX_BATCH = 1000  # the server's limit of events per /lineage/batch call
RETRY_STATUSES = frozenset({500, 502, 503, 504})

M = TypeVar("M", bound=Model)
DatasetSpec = str | Mapping[str, str]


def _quote(value: str) -> str:
    return quote(str(value), safe="")


def _dataset_refs(datasets: Iterable[DatasetSpec | tuple[str, str]]) -> list[Any]:
    """Dataset references as the API takes them: an id, or ``{"namespace", "name"}`` (from a pair or a dict)."""
    refs: list[Any] = []
    for item in datasets:
        if isinstance(item, tuple):
            namespace, name = item
            refs.append({"namespace": namespace, "name": name})
        elif isinstance(item, Mapping):
            refs.append(dict(item))
        else:
            refs.append(str(item))
    return refs


class StewardClient:
    """A client of one Steward server.

    >>> client = StewardClient("https://steward.example.org", token="stw_...")
    >>> for hit in client.search("orders").results: ...
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 4,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        user_agent: str | None = None,
    ) -> None:
        if not url:
            raise ValueError("The Steward URL is empty (set STEWARD_URL or pass url=).")
        self.url = url.rstrip("/") + "/"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent or f"steward-client/{__version__}"
        self.session.headers["Accept"] = "application/json"
        self._token = token

    def __repr__(self) -> str:  # never shows the token
        return f"StewardClient({self.url!r}, token={'set' if self._token else 'none'})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> StewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP ---------------------------------------------------------------------------------------

    def _absolute(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.url, path.lstrip("/") if path.startswith("/api/") else f"api/v1/{path.lstrip('/')}")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry: bool = False,
    ) -> Any:
        """One call; the decoded JSON body (``None`` for 204). ``retry``: retry connection errors and 5xx (only
        for calls the server makes idempotent)."""
        url = self._absolute(path)
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.session.request(
                    method, url, params=params, json=json, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as exc:
                if last:
                    reason = type(exc).__name__
                    raise StewardConnectionError(
                        f"Could not reach {self.url} ({reason}).", code="connection_error", method=method, url=url
                    ) from None
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            return self._decode(method, url, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2**attempt)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 60.0))
        time.sleep(delay)

    @staticmethod
    def _decode(method: str, url: str, response: requests.Response) -> Any:
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        if response.status_code >= 400:
            raise error_from_response(response.status_code, body, method=method, url=url, text=response.text)
        if body is None and response.content and response.status_code != 204:
            raise StewardError(
                "The server answered something that is not JSON; is the URL Steward's?",
                status=response.status_code,
                code="not_json",
                method=method,
                url=url,
            )
        return body

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, page_size: int | None = None
    ) -> Iterator[Any]:
        """Every item of a cursor-paginated list, fetching the next page (``next``) as the previous one runs out."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if page_size:
            query["page_size"] = page_size
        page = self.request("GET", path, params=query)
        while True:
            if isinstance(page, list):  # an unpaginated list
                yield from page
                return
            yield from page.get("results", [])
            next_url = page.get("next")
            if not next_url:
                return
            page = self.request("GET", next_url)

    def _list(self, model: type[M], path: str, params: Mapping[str, Any] | None, page_size: int | None) -> Iterator[M]:
        for item in self.paginate(path, params, page_size):
            yield model.from_json(item)

    # --- who am I -----------------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """The token's user: ``username``, ``roles``, ``groups``."""
        me: dict[str, Any] = self.request("GET", "me")
        return me

    # --- search -------------------------------------------------------------------------------------

    def search(
        self,
        query: str = "",
        *,
        kind: Sequence[str] = (),
        platform: Sequence[str] = (),
        tag: Sequence[str] = (),
        classification: Sequence[str] = (),
        owner: Sequence[str] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> SearchResults:
        """One page of ranked results with facet counts. Filters (facets) take several values each:
        ``search("orders", platform=["postgres"], tag=["pii.email"], owner=["group:sales-eng"])``."""
        params: dict[str, Any] = {
            "q": query or None,
            "kind": list(kind) or None,
            "platform": list(platform) or None,
            "tag": list(tag) or None,
            "classification": list(classification) or None,
            "owner": list(owner) or None,
            "limit": limit,
            "offset": offset,
        }
        return SearchResults.from_json(self.request("GET", "search", params=params))

    def search_all(self, query: str = "", *, page_size: int = 50, **filters: Any) -> Iterator[Any]:
        """Every hit of a search, page after page (offset pagination)."""
        offset = 0
        while True:
            page = self.search(query, limit=page_size, offset=offset, **filters)
            yield from page.results
            offset += len(page.results)
            if not page.results or offset >= page.total:
                return

    # --- datasets -----------------------------------------------------------------------------------

    def dataset(self, dataset_id: str) -> Dataset:
        """One dataset with its schema fields."""
        return Dataset.from_json(self.request("GET", f"datasets/{_quote(dataset_id)}/"))

    def dataset_lookup(self, namespace: str, name: str) -> Dataset:
        """The dataset of an OpenLineage identity (or alias)."""
        params = {"namespace": namespace, "name": name}
        return Dataset.from_json(self.request("GET", "datasets/lookup/", params=params))

    def datasets(
        self,
        *,
        namespace: str | None = None,
        platform: str | None = None,
        tag: str | None = None,
        classification: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Dataset]:
        """Every dataset you may see, newest first, pages followed."""
        params = {"namespace": namespace, "platform": platform, "tag": tag, "classification": classification}
        return self._list(Dataset, "datasets/", params, page_size)

    # --- tags ---------------------------------------------------------------------------------------

    def tags(self, *, page_size: int | None = None) -> Iterator[Tag]:
        """The tag vocabulary."""
        return self._list(Tag, "tags/", None, page_size)

    def dataset_tags(self, dataset_id: str, *, field: str | None = None, at: str | None = None) -> DatasetTags:
        """Direct and propagated tags of a dataset (or of its column ``field``) and its effective classification."""
        base = f"datasets/{_quote(dataset_id)}/"
        path = f"{base}fields/{_quote(field)}/tags/" if field else f"{base}tags/"
        return DatasetTags.from_json(self.request("GET", path, params={"at": at} if at else None))

    def tag_add(self, dataset_id: str, key: str, *, field: str | None = None) -> Dataset:
        """Tag the dataset, or its column ``field``; the dataset as it is afterwards."""
        body: dict[str, Any] = {"key": key}
        if field:
            body["field"] = field
        return Dataset.from_json(self.request("POST", f"datasets/{_quote(dataset_id)}/tags/", json=body))

    def tag_remove(self, dataset_id: str, key: str, *, field: str | None = None) -> None:
        """Remove a direct tag from the dataset, or from its column ``field``."""
        params = {"field": field} if field else None
        self.request("DELETE", f"datasets/{_quote(dataset_id)}/tags/{_quote(key)}/", params=params)

    # --- lineage ------------------------------------------------------------------------------------

    def lineage_event(self, event: Mapping[str, Any]) -> IngestResult:
        """Send one OpenLineage event (RunEvent, DatasetEvent or JobEvent); retried on 5xx and connection
        errors (a replay answers ``duplicate``)."""
        return IngestResult.from_json(self.request("POST", "lineage", json=dict(event), retry=True))

    def lineage_batch(self, events: Sequence[Mapping[str, Any]]) -> list[IngestResult]:
        """Send up to 1,000 events in one call (one invalid event rejects the batch, naming ``events[i]...``);
        retried on 5xx and connection errors."""
        if len(events) > MAX_BATCH:
            raise ValueError(f"At most {MAX_BATCH} events per batch (got {len(events)}); use lineage_send.")
        body = self.request("POST", "lineage/batch", json={"events": [dict(e) for e in events]}, retry=True)
        return [IngestResult.from_json(r) for r in body.get("results", [])]

    def lineage_send(
        self, events: Iterable[Mapping[str, Any]], *, batch_size: int = 500
    ) -> Iterator[list[IngestResult]]:
        """Send any number of events in batches of ``batch_size``; yields each batch's results once acknowledged."""
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}.")
        chunk: list[Mapping[str, Any]] = []
        for event in events:
            chunk.append(event)
            if len(chunk) == batch_size:
                yield self.lineage_batch(chunk)
                chunk = []
        if chunk:
            yield self.lineage_batch(chunk)

    # --- access requests and grants ------------------------------------------------------------------

    def access_request(
        self,
        datasets: Iterable[DatasetSpec | tuple[str, str]],
        *,
        purpose: str,
        justification: str,
        duration: str,
        workspace: Mapping[str, str] | None = None,
    ) -> AccessRequest:
        """Ask to read ``datasets`` (ids, ``(namespace, name)`` pairs or dicts) for ``duration`` (ISO 8601: P7D)."""
        body: dict[str, Any] = {
            "datasets": _dataset_refs(datasets),
            "purpose": purpose,
            "justification": justification,
            "duration": duration,
        }
        if workspace:
            body["workspace"] = dict(workspace)
        return AccessRequest.from_json(self.request("POST", "access-requests/", json=body))

    def access_requests(
        self, *, state: str | None = None, awaiting_me: bool = False, page_size: int | None = None
    ) -> Iterator[AccessRequest]:
        """Your access requests (all for compliance officers and admins), or with ``awaiting_me`` your queue."""
        params = {"state": state, "awaiting": "me" if awaiting_me else None}
        return self._list(AccessRequest, "access-requests/", params, page_size)

    def access_request_get(self, request_id: str) -> AccessRequest:
        return AccessRequest.from_json(self.request("GET", f"access-requests/{_quote(request_id)}/"))

    def access_request_withdraw(self, request_id: str, *, reason: str = "") -> AccessRequest:
        body = {"reason": reason} if reason else {}
        return AccessRequest.from_json(
            self.request("POST", f"access-requests/{_quote(request_id)}/withdraw/", json=body)
        )

    def access_request_approve(self, request_id: str, *, role: str | None = None, comment: str = "") -> AccessRequest:
        """Give your approval (``role``: owner, privacy-officer or data-steward, when you hold several)."""
        body: dict[str, Any] = {}
        if role:
            body["role"] = role
        if comment:
            body["comment"] = comment
        return AccessRequest.from_json(
            self.request("POST", f"access-requests/{_quote(request_id)}/approve/", json=body)
        )

    def access_request_deny(self, request_id: str, *, reason: str) -> AccessRequest:
        return AccessRequest.from_json(
            self.request("POST", f"access-requests/{_quote(request_id)}/deny/", json={"reason": reason})
        )

    def grants(
        self,
        *,
        dataset: str | None = None,
        state: str | None = None,
        user: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Grant]:
        """Grants you may see: yours, on datasets you own, or all (stewards, officers, admins)."""
        params = {"dataset": dataset, "state": state, "user": user}
        return self._list(Grant, "grants/", params, page_size)

    # --- workspaces ---------------------------------------------------------------------------------

    def workspace_create(
        self,
        template: str,
        *,
        name: str = "",
        project: str | None = None,
        datasets: Iterable[DatasetSpec | tuple[str, str]] = (),
        resources: Mapping[str, Any] | None = None,
        start: bool = True,
    ) -> Workspace:
        """A new workspace from ``template`` mounting ``datasets`` (each covered by a grant of yours)."""
        body: dict[str, Any] = {"template": template, "name": name, "start": start, "datasets": _dataset_refs(datasets)}
        if project:
            body["project"] = project
        if resources:
            body["resources"] = dict(resources)
        return Workspace.from_json(self.request("POST", "workspaces/", json=body))

    def workspaces(self, *, state: str | None = None, page_size: int | None = None) -> Iterator[Workspace]:
        """Workspaces you may see (not deleted ones unless ``state="deleted"``)."""
        return self._list(Workspace, "workspaces/", {"state": state}, page_size)

    def workspace(self, workspace_id: str) -> Workspace:
        return Workspace.from_json(self.request("GET", f"workspaces/{_quote(workspace_id)}/"))

    def workspace_stop(self, workspace_id: str) -> Workspace:
        return Workspace.from_json(self.request("POST", f"workspaces/{_quote(workspace_id)}/stop/"))

    def workspace_start(self, workspace_id: str) -> Workspace:
        return Workspace.from_json(self.request("POST", f"workspaces/{_quote(workspace_id)}/start/"))

    def workspace_delete(self, workspace_id: str) -> Workspace:
        return Workspace.from_json(self.request("DELETE", f"workspaces/{_quote(workspace_id)}/"))

    def workspace_templates(self) -> list[dict[str, Any]]:
        templates: list[dict[str, Any]] = self.request("GET", "workspace-templates/")
        return templates

    # --- compliance ---------------------------------------------------------------------------------

    def reconstruct(
        self,
        *,
        result: str | None = None,
        model_version: str | None = None,
        at: str | None = None,
        depth: int | None = None,
        keep: bool = False,
    ) -> ComplianceReport:
        """What was in effect when a result was produced (``result``), or at ``at`` for a ``model_version``.
        ``keep=True`` POSTs it as a stored compliance report (with an id); otherwise it is only looked at."""
        query = {"result": result, "model_version": model_version, "at": at, "depth": depth}
        query = {k: v for k, v in query.items() if v is not None}
        if keep:
            return ComplianceReport.from_json(self.request("POST", "compliance/reports", json=query))
        return ComplianceReport.from_json(self.request("GET", "compliance/reconstruct", params=query))

    def reports(self, *, page_size: int | None = None) -> Iterator[ComplianceReport]:
        return self._list(ComplianceReport, "compliance/reports", None, page_size)

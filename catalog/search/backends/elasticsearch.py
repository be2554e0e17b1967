"""Search in Elasticsearch 8.x, using only what the core server has (no analysis-common, no Painless).

Everything language-like is done in Python at index time, so the mapping needs no analysis plugin:

- names are split into words (``snake_case``, ``camelCase``, dotted and slashed names: ``tokenize``), and every
  word's prefixes are stored as keywords (``name_prefixes`` for the name, ``all_prefixes`` for every field):
  edge n-grams computed here, so a query word matches as a word prefix with one ``term`` lookup, and
  typeahead is a filter on ``name_prefixes``;
- typo tolerance: the core term suggester (on ``all_words``, every whole word, whitespace analyzer) rides along
  with every search's counting request; when the exact-prefix query finds nothing, each word the index does not
  know is replaced by its closest known word and the search runs once more for the corrected words, as the
  database backend corrects words (a fuzzy query over every document cost 94-238 ms at 1M; the suggester reads
  only the term dictionary);
- relevance is the database backend's tiers (3: the whole query is the name; 2: every word in the name; 1:
  every word anywhere), then popularity (opens, access requests, lineage use), then the shortest name. The index
  is stored in that within-tier order (``index.sort``: ``RANK``), and each tier is its own query sorted the same
  way without counting (``track_total_hits: false``), so Elasticsearch stops after a page instead of visiting
  every match of a broad query; the tiers' queries and one counting request go in one ``_msearch``;
- visibility: hidden (C4) assets carry their readers (owners); a viewer who does not see everything gets a
  filter ``hidden = false OR owners ∈ principals`` in the query itself, so hits, totals, facet counts and
  suggestions all come from what the viewer may see;
- totals and facets: the counting request stops after ``exact_limit`` + 1 matches (``terminate_after``; in index
  order, so the most used ones), so every count is exact when the total is, and a lower bound
  (``total_is_exact: false``) beyond, as on the database. It may be answered from the shard request cache (the
  ``request_cache`` option, default on), which a refresh that changed the index empties.

Searches go to an alias (``index`` option, default ``steward-search``); ``rebuild`` fills a new index (one
shard, sorted, no refreshes while filling), force-merges it to one segment and moves the alias in one request,
so a rebuild has no downtime. An index made before the index sort answers the same, only without stopping
early, until ``search_reindex`` rebuilds it. The facet fields load their global ordinals at refresh
(``eager_global_ordinals``), not on the first search after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.conf import settings

from catalog.search.backends.base import (
    FACETS,
    MAX_OFFSET,
    SearchHit,
    SearchQuery,
    SearchResults,
    Suggestion,
    tokenize,
)
from catalog.search.documents import SearchDocument
from steward.errors import BackendUnavailable
from steward.identity import Viewer

__all__ = ["ElasticsearchSearchBackend", "document_body", "prefixes"]

logger = logging.getLogger(__name__)

FACET_LIMIT = 25
MAX_PREFIX = 30  # longer query words are cut to this many characters (and so are the stored prefixes)
_FACET_FIELDS = {
    "kind": "kind",
    "platform": "platform",
    "classification": "classification",
    "tag": "tags",
    "owner": "owners",
}
_SOURCE = [
    "kind",
    "id",
    "name",
    "qualified_name",
    "namespace",
    "platform",
    "description",
    "classification",
    "tags",
    "removed",
]

# The order within a relevance tier (and of typeahead): most used, then shortest qualified name, then by name. The
# index is sorted the same way (``index.sort``), so a search sorted by it reads matches in that order and stops
# after a page.
RANK = (("popularity", "desc"), ("name_length", "asc"), ("qualified_name", "asc"))
RANK_SORT = [{field: {"order": order}} for field, order in RANK]

# Facet fields: global ordinals built at refresh, not by the first aggregation after it.
_FACET_KEYWORD = {"type": "keyword", "eager_global_ordinals": True}
MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "kind": _FACET_KEYWORD,
        "id": {"type": "keyword"},
        "name": {"type": "keyword", "index": False},
        "qualified_name": {"type": "keyword"},
        "namespace": {"type": "keyword", "index": False},
        "platform": _FACET_KEYWORD,
        "description": {"type": "text", "index": False},
        "classification": _FACET_KEYWORD,
        "hidden": {"type": "boolean"},
        "removed": {"type": "boolean"},
        "tags": _FACET_KEYWORD,
        "owners": _FACET_KEYWORD,
        "name_exact": {"type": "keyword"},
        "name_prefixes": {"type": "keyword"},
        "all_prefixes": {"type": "keyword"},
        "name_words": {"type": "text", "analyzer": "whitespace", "norms": False},
        "all_words": {"type": "text", "analyzer": "whitespace", "norms": False},
        "name_length": {"type": "integer"},
        "popularity": {"type": "long"},
        "updated_at": {"type": "date"},
    },
}


def prefixes(words: Iterable[str]) -> list[str]:
    """Every prefix of every word (edge n-grams, at most ``MAX_PREFIX`` long), without repeats."""
    out: dict[str, None] = {}
    for w in words:
        for i in range(1, min(len(w), MAX_PREFIX) + 1):
            out[w[:i]] = None
    return list(out)


def document_body(doc: SearchDocument) -> dict[str, Any]:
    """The Elasticsearch source of one document: display fields, filters, and the words computed here."""
    name_words = list(dict.fromkeys(tokenize(doc.name) + tokenize(doc.qualified_name)))
    other_words = [w for text in (*doc.columns, doc.description, *doc.tags, doc.namespace) for w in tokenize(text)]
    all_words = list(dict.fromkeys(name_words + other_words))
    return {
        "kind": doc.kind,
        "id": str(doc.id),
        "name": doc.name,
        "qualified_name": doc.qualified_name,
        "namespace": doc.namespace,
        "platform": doc.platform,
        "description": doc.description,
        "classification": doc.classification,
        "hidden": doc.hidden,
        "removed": doc.removed,
        "tags": list(doc.tags),
        "owners": list(doc.readers),
        "name_exact": list(dict.fromkeys([doc.name.strip().lower(), doc.qualified_name.strip().lower()])),
        "name_prefixes": prefixes(name_words),
        "all_prefixes": prefixes(all_words),
        "name_words": " ".join(name_words),
        "all_words": " ".join(all_words),
        "name_length": len(doc.qualified_name),
        "popularity": doc.popularity,
        "updated_at": (doc.updated_at or datetime.now(UTC)).isoformat(),
    }


class ElasticsearchSearchBackend:
    """Search in an Elasticsearch 8.x cluster (options: ``url``, ``index``, ``refresh``, ``timeout``,
    ``max_retries``, ``exact_limit``, ``request_cache``)."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.url: str = str(options.get("url") or settings.STEWARD_ELASTICSEARCH_URL)
        self.alias: str = str(options.get("index", "steward-search"))
        self.refresh: bool = bool(options.get("refresh", False))
        self.timeout: float = float(options.get("timeout", 10))
        self._client: Any = None
        self._ready = False  # the alias is known to exist (checked once per process)

    @property
    def exact_limit(self) -> int:
        """Totals and facet counts are exact up to this many matches (``track_total_hits``, the facets'
        sampler); beyond, both are lower bounds."""
        return int(self.options.get("exact_limit", 10_000))

    @property
    def request_cache(self) -> bool:
        """Whether counting requests may be answered from the shard request cache (default on)."""
        return bool(self.options.get("request_cache", True))

    @property
    def client(self) -> Any:
        if self._client is None:  # imported and connected on first use: startup never needs Elasticsearch
            from elasticsearch import Elasticsearch

            self._client = Elasticsearch(
                self.url,
                request_timeout=self.timeout,
                max_retries=int(self.options.get("max_retries", 2)),
                retry_on_timeout=True,
            )
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one client call; connection trouble and server overload become ``BackendUnavailable``
        (so the indexing task retries), anything else is raised as it is."""
        from elasticsearch import ApiError, TransportError

        try:
            return fn(*args, **kwargs)
        except TransportError as exc:  # connection refused, timeout, TLS: the engine is not there
            raise BackendUnavailable(f"elasticsearch {what}: {type(exc).__name__}") from exc
        except ApiError as exc:
            if exc.meta.status in (429, 502, 503, 504):
                raise BackendUnavailable(f"elasticsearch {what}: HTTP {exc.meta.status}") from exc
            raise

    # --- index management ---------------------------------------------------------------------------
    def _new_index_name(self) -> str:
        return f"{self.alias}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"

    def _create_index(self, name: str) -> None:
        self._call(
            "create index",
            self.client.indices.create,
            index=name,
            settings={
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "max_result_window": MAX_OFFSET + 200,
                # Documents stored in rank order: a query sorted the same way stops after a page.
                "sort.field": [f for f, _ in RANK],
                "sort.order": [o for _, o in RANK],
            },
            mappings=MAPPING,
        )

    def _alias_targets(self) -> list[str]:
        from elasticsearch import NotFoundError

        try:
            return sorted(self._call("get alias", self.client.indices.get_alias, name=self.alias))
        except NotFoundError:
            return []

    def setup(self) -> None:
        """Create the first index behind the alias when there is none (idempotent)."""
        if self._ready:
            return
        if self._alias_targets():
            # An index made before a field was added learns it (adding a field is allowed; strict refuses unknown).
            self._call(
                "put mapping", self.client.indices.put_mapping, index=self.alias, properties=MAPPING["properties"]
            )
            # The index sort cannot be added to an existing index: say once per process how to get it.
            found = self._call(
                "get settings", self.client.indices.get_settings, index=self.alias, name="index.sort.field"
            )
            if not all(
                found.get(t, {}).get("settings", {}).get("index", {}).get("sort") for t in self._alias_targets()
            ):
                logger.warning(
                    "search index %r has no index sort: answers are right but slower at scale; run "
                    "`manage.py search_reindex` (no downtime) to rebuild it sorted",
                    self.alias,
                )
            self._ready = True
            return
        name = self._new_index_name()
        self._create_index(name)
        self._call("add alias", self.client.indices.put_alias, index=name, name=self.alias)
        self._ready = True

    def drop(self) -> None:
        """Delete the alias and every index behind it (tests; not part of the protocol)."""
        for name in self._alias_targets():
            self._call("delete index", self.client.indices.delete, index=name)
        self._ready = False

    def check(self) -> None:
        health = self._call("health", self.client.cluster.health, timeout="2s")
        if health["status"] == "red":
            raise BackendUnavailable("elasticsearch cluster health is red")
        if not self._alias_targets():
            raise BackendUnavailable(f"elasticsearch has no index {self.alias!r}; run `manage.py search_reindex`")

    # --- writes -------------------------------------------------------------------------------------
    def _bulk(self, index: str, operations: list[dict[str, Any]], refresh: bool) -> None:
        if not operations:
            return
        res = self._call("bulk", self.client.bulk, index=index, operations=operations, refresh=refresh)
        if not res.get("errors"):
            return
        failed = [item for item in res["items"] for op in item.values() if op.get("error")]
        statuses = {op.get("status") for item in failed for op in item.values()}
        if statuses & {429, 502, 503, 504}:
            raise BackendUnavailable(f"elasticsearch bulk: {len(failed)} item(s) refused (busy)")
        # A document the mapping rejects will not get better by retrying: name it and stop.
        first = next(iter(failed[0].values()))
        raise ValueError(f"elasticsearch refused {len(failed)} document(s), e.g. {first['_id']}: {first['error']}")

    def _index_into(self, index: str, docs: Sequence[SearchDocument], refresh: bool) -> None:
        ops: list[dict[str, Any]] = []
        for d in docs:
            ops.append({"index": {"_id": f"{d.kind}:{d.id}"}})
            ops.append(document_body(d))
        self._bulk(index, ops, refresh)

    def index(self, docs: Sequence[SearchDocument]) -> None:
        self.setup()
        self._index_into(self.alias, docs, self.refresh)

    def delete(self, kind: str, ids: Sequence[str]) -> None:
        self.setup()
        self._bulk(self.alias, [{"delete": {"_id": f"{kind}:{i}"}} for i in ids], self.refresh)

    def clear(self) -> None:
        """Replace the index behind the alias by an empty one."""
        self.rebuild([])

    def rebuild(self, batches: Iterable[Sequence[SearchDocument]]) -> None:
        """Fill a new index and move the alias to it in one request; readers see the old index until then."""
        old = self._alias_targets()
        name = self._new_index_name()
        self._create_index(name)
        try:
            # Bulk loading: no refreshes while filling.
            self._call("settings", self.client.indices.put_settings, index=name, settings={"refresh_interval": "-1"})
            for batch in batches:
                self._index_into(name, batch, refresh=False)
            self._call("settings", self.client.indices.put_settings, index=name, settings={"refresh_interval": None})
            self._call("refresh", self.client.indices.refresh, index=name)
            # One segment: searches and facet counts read one term dictionary and one set of doc values
            # instead of merging a dozen segments' (the index is read-only until the alias moves to it).
            self._call(
                "force merge",
                self.client.options(request_timeout=max(self.timeout, 3600)).indices.forcemerge,
                index=name,
                max_num_segments=1,
            )
        except BaseException:
            self._call("delete index", self.client.indices.delete, index=name)
            raise
        actions: list[dict[str, Any]] = [{"add": {"index": name, "alias": self.alias}}]
        actions += [{"remove_index": {"index": o}} for o in old]
        self._call("swap alias", self.client.indices.update_aliases, actions=actions)

    # --- reads --------------------------------------------------------------------------------------
    def _visibility(self, viewer: Viewer) -> list[dict[str, Any]]:
        if viewer.sees_all:
            return []
        should: list[dict[str, Any]] = [{"term": {"hidden": False}}]
        if viewer.principals:
            should.append({"terms": {"owners": sorted(viewer.principals)}})
        return [{"bool": {"should": should, "minimum_should_match": 1}}]

    def _filters(self, query: SearchQuery, viewer: Viewer) -> list[dict[str, Any]]:
        filters = self._visibility(viewer)
        for field_name, values in (
            ("kind", query.kinds),
            ("platform", query.platforms),
            ("classification", query.classifications),
            ("tags", query.tags),
            ("owners", query.owners),
        ):
            if values:
                filters.append({"terms": {field_name: list(values)}})
        if not query.include_removed:  # a document indexed before the field existed is not removed
            filters.append({"bool": {"must_not": [{"term": {"removed": True}}]}})
        return filters

    @staticmethod
    def _tiers(words: list[str], raw: str) -> tuple[list[dict[str, Any]], list[tuple[float, dict[str, Any]]]]:
        """(what every match has, the relevance tiers best first as (score, bool clauses of the tier)).

        A match scores 1, plus 1 when every word is in the name, plus 1 when the whole query is the name; each
        tier is the matches of one score, so its page is read in the index's own order (``RANK``)."""
        if not words:
            return [], [(0.0, {})]
        must = [{"term": {"all_prefixes": w[:MAX_PREFIX]}} for w in words]
        in_name = {"bool": {"filter": [{"term": {"name_prefixes": w[:MAX_PREFIX]}} for w in words]}}
        exact = {"term": {"name_exact": raw.strip().lower()}}
        return must, [
            (3.0, {"filter": [in_name, exact]}),
            (
                2.0,
                {
                    "should": [in_name, exact],
                    "minimum_should_match": 1,
                    "must_not": [{"bool": {"filter": [in_name, exact]}}],
                },
            ),
            (1.0, {"must_not": [in_name, exact]}),
        ]

    @staticmethod
    def _tier_query(matches: list[dict[str, Any]], tier: dict[str, Any]) -> dict[str, Any]:
        return {"bool": {**tier, "filter": matches + tier.get("filter", [])}}

    def _stats_body(self, matches: list[dict[str, Any]], words: list[str]) -> dict[str, Any]:
        """Total and facet counts of the first ``exact_limit`` + 1 matches (in index order: the most used), and
        the term suggester's corrections of ``words`` (used only if nothing matches: ``_corrected``)."""
        body: dict[str, Any] = {
            # Not ``size: 0``: Elasticsearch 8.19 ignores ``terminate_after`` for aggregations then
            # (elastic/elasticsearch#126665, fixed in a later 8.19); one hit in index order costs nothing.
            "size": 1,
            "sort": ["_doc"],
            "_source": False,
            "stored_fields": "_none_",
            "query": {"bool": {"filter": matches}},
            "track_total_hits": True,
            "terminate_after": self.exact_limit + 1,
            "aggs": {
                facet: {"terms": {"field": field_name, "size": FACET_LIMIT}}
                for facet, field_name in _FACET_FIELDS.items()
            },
        }
        suggest = {
            f"w{i}": {
                "text": w,
                "term": {
                    "field": "all_words",
                    "suggest_mode": "missing",
                    "prefix_length": 1,
                    "min_word_length": 4,
                    "size": 1,
                },
            }
            for i, w in enumerate(words)
            if not w.isdigit()
        }
        if suggest:
            body["suggest"] = suggest
        return body

    def _msearch(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run searches in one request (Elasticsearch runs them concurrently). The counting ones (no page of hits)
        may be answered from the shard request cache (``request_cache`` option, default on; a refresh that
        changed the index empties it)."""
        searches: list[dict[str, Any]] = []
        for body in bodies:
            counting = body.get("size") == 0 or "terminate_after" in body
            searches += [{"request_cache": self.request_cache} if counting else {}, body]
        res = self._call("search", self.client.msearch, index=self.alias, searches=searches)
        out = list(res["responses"])
        for r in out:
            if "error" in r:
                status = int(r.get("status") or 500)
                if status in (429, 502, 503, 504):
                    raise BackendUnavailable(f"elasticsearch search: HTTP {status}")
                if status == 404:  # no index behind the alias yet, as ``check`` reports it
                    raise BackendUnavailable(
                        f"elasticsearch has no index {self.alias!r}; run `manage.py search_reindex`"
                    )
                raise RuntimeError(f"elasticsearch search failed: {r['error']}")
        return out

    def _run(
        self, filters: list[dict[str, Any]], words: list[str], raw: str, offset: int, limit: int, *, correct: bool
    ) -> tuple[dict[str, Any], list[SearchHit]]:
        """(the counting response, the page): the count and each tier's page in one ``_msearch``.

        Each tier is read sorted as the index is (``RANK``) without counting its matches
        (``track_total_hits: false``), so Elasticsearch stops after a page instead of visiting every match of a
        broad query. A page past the first needs the tiers' sizes first: one ``size: 0`` count per tier, capped
        at ``offset + limit``, then the tiers that hold the page."""
        must, tiers = self._tiers(words, raw)
        matches = filters + must
        stats = self._stats_body(matches, words if correct else [])

        def page_body(tier: dict[str, Any], start: int, size: int) -> dict[str, Any]:
            return {
                "query": self._tier_query(matches, tier),
                "sort": RANK_SORT,
                "from": start,
                "size": size,
                "_source": _SOURCE,
                "track_total_hits": False,
            }

        parts: list[tuple[float, dict[str, Any]]]
        if offset == 0:
            responses = self._msearch([stats] + [page_body(tier, 0, limit) for _, tier in tiers])
            parts = [(score, r) for (score, _), r in zip(tiers, responses[1:], strict=True)]
        else:
            counts = [
                {"query": self._tier_query(matches, tier), "size": 0, "track_total_hits": offset + limit}
                for _, tier in tiers
            ]
            responses = self._msearch([stats, *counts])
            wanted: list[tuple[float, dict[str, Any]]] = []
            skip, need = offset, limit
            for (score, tier), r in zip(tiers, responses[1:], strict=True):
                size = r["hits"]["total"]["value"]  # at most offset + limit: then at least what is needed
                if need <= 0:
                    break
                if skip >= size:
                    skip -= size
                    continue
                take = min(need, size - skip)
                wanted.append((score, page_body(tier, skip, take)))
                skip, need = 0, need - take
            pages = self._msearch([body for _, body in wanted]) if wanted else []
            parts = [(score, r) for (score, _), r in zip(wanted, pages, strict=True)]
        hits = [
            SearchHit(
                kind=h["_source"]["kind"],
                id=UUID(h["_source"]["id"]),
                name=h["_source"]["name"],
                qualified_name=h["_source"]["qualified_name"],
                namespace=h["_source"]["namespace"],
                platform=h["_source"]["platform"],
                description=h["_source"]["description"],
                classification=h["_source"]["classification"],
                tags=sorted(h["_source"]["tags"]),
                score=score,
                removed=bool(h["_source"].get("removed")),
            )
            for score, r in parts
            for h in r["hits"]["hits"]
        ]
        return responses[0], hits[:limit]

    def search(self, query: SearchQuery, viewer: Viewer) -> SearchResults:
        words = tokenize(query.q)
        filters = self._filters(query, viewer)
        offset = min(max(query.offset, 0), MAX_OFFSET)
        stats, hits = self._run(filters, words, query.q, offset, query.limit, correct=True)
        corrected: list[str] = []
        if words and stats["hits"]["total"]["value"] == 0:
            corrected = self._corrected(words, stats)
            if corrected:
                again = self._run(filters, corrected, " ".join(corrected), offset, query.limit, correct=False)
                # A correction is shown only with what it finds for this viewer (so it reveals no word of an
                # asset the viewer may not see).
                if again[0]["hits"]["total"]["value"]:
                    stats, hits = again
                else:
                    corrected = []
        counted = stats["hits"]["total"]["value"]  # at most exact_limit + 1 (terminate_after)
        aggs = stats["aggregations"]
        return SearchResults(
            total=min(counted, self.exact_limit),
            hits=hits,
            facets={facet: [(b["key"], b["doc_count"]) for b in aggs[facet]["buckets"]] for facet in FACETS},
            exact=counted <= self.exact_limit,
            fuzzy=bool(corrected),
            corrected=" ".join(corrected),
        )

    @staticmethod
    def _corrected(words: list[str], stats: dict[str, Any]) -> list[str]:
        """The words with each one the index does not know replaced by its closest known word (the term
        suggester of ``_stats_body``, on ``all_words``: edit distance up to 2, first letter kept, then the most
        frequent); [] when none changed. Numbers and words under four letters are kept as typed."""
        out = list(words)
        for key, entries in stats.get("suggest", {}).items():
            options = entries[0]["options"] if entries else []
            if options:
                out[int(key[1:])] = options[0]["text"]
        return out if out != words else []

    def suggest(self, prefix: str, viewer: Viewer, limit: int = 10) -> list[Suggestion]:
        words = tokenize(prefix)
        if not words or len(words[-1]) < 2:  # typeahead starts at two characters, as on the database
            return []
        filters = self._visibility(viewer) + [{"term": {"name_prefixes": w[:MAX_PREFIX]}} for w in words]
        filters.append({"bool": {"must_not": [{"term": {"removed": True}}]}})
        res = self._call(
            "suggest",
            self.client.search,
            index=self.alias,
            query={"bool": {"filter": filters}},
            sort=RANK_SORT,  # the index's order: stops after ``limit`` matches
            size=limit,
            _source=["kind", "id", "name", "qualified_name"],
            track_total_hits=False,
        )
        found = [h["_source"] for h in res["hits"]["hits"]]
        return [Suggestion(f["kind"], UUID(f["id"]), f["name"], f["qualified_name"]) for f in found]

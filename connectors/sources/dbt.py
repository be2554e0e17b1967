"""The dbt reader: a dbt project's ``manifest.json`` and ``catalog.json`` as datasets and OpenLineage run events.

Models, seeds, snapshots and sources become ``DatasetSnapshot``s (descriptions, columns typed from
``catalog.json`` and described from the manifest, tags, ``meta.owner`` as owners, dbt tests in ``properties``);
every model and snapshot becomes one COMPLETE RunEvent whose inputs are its parents in the manifest DAG and
whose output is its relation, with a ``columnLineage`` facet where ``openlineage-sql`` parses its compiled SQL.

Naming follows ``openlineage-dbt`` (the OpenLineage project's dbt integration), so the events of a real
``dbt-ol run`` and this reader meet on the same datasets and jobs. Read in OpenLineage/OpenLineage at 8f02abf,
``integration/common/src/openlineage/common/provider/dbt/processor.py``:

- dataset namespace: ``extract_namespace(profile)``, from the adapter type and the profile's target
  (``postgres://{host}:{port}``, ``redshift://{host}:{port}``, ``snowflake://{account}``, ``bigquery``, …);
- dataset name: ``_format_dataset_name(database, schema, table)``, the non-empty parts joined by dots, where
  ``table`` is a node's ``alias`` and a source's ``name`` (``extract_dataset_data``) — so a source whose
  ``identifier`` differs from its ``name`` is named after the name, as openlineage-dbt does;
- job name: ``{database}.{schema}.{unique_id without "model."}`` of the model (``parse_execution``), and
  ``… {unique_id without "snapshot."}.snapshot`` for a snapshot (the names of ``dbt-ol run`` and
  ``dbt-ol snapshot``; ``dbt-ol build`` appends ``.build.run``, which this reader does not);
- job namespace: ``OPENLINEAGE_NAMESPACE``, default ``dbt`` (``integration/dbt/src/openlineage/dbt/__init__.py``).

Two deliberate differences, both about inputs that openlineage-dbt gets wrong for a catalog: a model's
seeds are inputs here (openlineage-dbt keeps only ``model.`` and ``source.`` parents, so a seed never feeds
anything), and an ephemeral model is not a dataset (it is inlined as a CTE), so a model that refs one gets the
ephemeral model's own parents instead (openlineage-dbt names a relation that does not exist).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from connectors.sources.base import (
    ColumnSnapshot,
    DatasetSnapshot,
    Progress,
    SourceError,
    SourceSnapshot,
    allowed_paths,
    column_origin,
    path_problem,
)

__all__ = ["DbtReader", "SUPPORTED_MANIFEST_VERSIONS"]

# dbt 1.3 (v7, the first with ``compiled_code``) to dbt 1.11 (still v12).
SUPPORTED_MANIFEST_VERSIONS = range(7, 13)
DEFAULT_JOB_NAMESPACE = "dbt"
PRODUCER = "https://steward/sources/dbt"
_RUN_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_COLUMN_LINEAGE_SCHEMA = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"
_JOB_TYPE_SCHEMA = "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json"
_SQL_SCHEMA = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json"
_DATASET_TYPES = ("model", "seed", "snapshot")
_ENV_VAR = re.compile(
    r"""\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*(?:\|\s*\w+\s*)?\}\}"""
)


class DbtReader:
    """Reads a dbt project's artifacts. ``config``:

    - ``project_dir``: the project, whose ``target/manifest.json`` and ``target/catalog.json`` are read
      (``target_path`` if the project writes elsewhere); or ``manifest_path`` (and ``catalog_path``) directly;
    - ``namespace``: the warehouse's OpenLineage namespace (``postgres://host:5432``). Without it, it is derived
      as openlineage-dbt derives it, from the profile in ``profiles_dir`` (default: the project directory) for
      ``profile`` (default: ``dbt_project.yml``'s) and ``target`` (default: the profile's);
    - ``job_namespace``: the jobs' namespace, ``dbt`` unless the project's ``dbt-ol`` runs set
      ``OPENLINEAGE_NAMESPACE`` to something else.

    ``secret`` is unused: the reader reads files, never the warehouse.
    """

    kind = "dbt"
    description_rank = 20  # the project's documentation: above a warehouse's comments
    # Config keys naming files or directories on the server: each must be inside STEWARD_SOURCE_ALLOWED_PATHS.
    path_fields = ("project_dir", "manifest_path", "catalog_path", "profiles_dir")

    def read(self, config: dict[str, Any], secret: dict[str, Any], progress: Progress | None = None) -> SourceSnapshot:
        allowed = allowed_paths()
        for key in self.path_fields:
            if config.get(key) not in (None, ""):
                _check_path(f"config.{key}", config[key], allowed)
        manifest_path, catalog_path = _artifact_paths(config)
        # The artifacts themselves too: a target_path or dbt_project.yml's target-path may lead out of the project.
        _check_path("The dbt manifest", str(manifest_path), allowed)
        if catalog_path is not None:
            _check_path("The dbt catalog", str(catalog_path), allowed)
        manifest = _load_manifest(manifest_path)
        snapshot = SourceSnapshot()
        catalog = _load_catalog(catalog_path, snapshot.warnings)
        adapter = str(manifest.get("metadata", {}).get("adapter_type") or "")
        namespace = _namespace(config, adapter)
        job_namespace = str(config.get("job_namespace") or DEFAULT_JOB_NAMESPACE)
        project = _Project(manifest, catalog, namespace)

        nodes = project.dataset_nodes()
        total = len(nodes) + len(project.job_nodes())
        done = 0
        for unique_id, node in nodes:
            snapshot.datasets.append(project.dataset(unique_id, node, snapshot.warnings))
            done += 1
            if progress:
                progress(done, total, unique_id)
        for unique_id, node in project.job_nodes():
            snapshot.lineage_events.append(
                project.run_event(unique_id, node, job_namespace, adapter, snapshot.warnings)
            )
            done += 1
            if progress:
                progress(done, total, unique_id)
        return snapshot


# ---------------------------------------------------------------------------------------------------------------
# Artifacts and the namespace


def _check_path(what: str, value: Any, allowed: list[Path]) -> None:
    problem = path_problem(value, allowed)
    if problem:
        raise SourceError(f"{what} {str(value)!r} may not be read: {problem}")


def _artifact_paths(config: dict[str, Any]) -> tuple[Path, Path | None]:
    if config.get("manifest_path"):
        manifest = Path(str(config["manifest_path"])).expanduser()
        catalog = Path(str(config["catalog_path"])).expanduser() if config.get("catalog_path") else None
        return manifest, catalog
    if not config.get("project_dir"):
        raise SourceError(
            "A dbt source needs config.project_dir (the dbt project, whose target/ holds manifest.json and "
            "catalog.json) or config.manifest_path (and config.catalog_path)."
        )
    project_dir = Path(str(config["project_dir"])).expanduser()
    if not project_dir.is_dir():
        raise SourceError(f"config.project_dir {str(project_dir)!r} is not a directory: check the path.")
    target = project_dir / str(config.get("target_path") or _project_target_path(project_dir))
    return target / "manifest.json", target / "catalog.json"


def _project_target_path(project_dir: Path) -> str:
    project = _read_yaml(project_dir / "dbt_project.yml")
    return str((project or {}).get("target-path") or "target")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise SourceError(f"Cannot read the dbt {what} {str(path)!r}: {exc.strerror or exc}.") from None
    except ValueError as exc:
        raise SourceError(f"The dbt {what} {str(path)!r} is not valid JSON ({exc}): regenerate it.") from None
    if not isinstance(data, dict):
        raise SourceError(f"The dbt {what} {str(path)!r} is not a JSON object: regenerate it.")
    return data


def _read_yaml(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"Cannot read {str(path)!r}: {exc}.") from None
    return data if isinstance(data, dict) else None


def _schema_version(data: dict[str, Any]) -> tuple[str, int | None]:
    """``("manifest", 12)`` from ``https://schemas.getdbt.com/dbt/manifest/v12.json``."""
    url = str(data.get("metadata", {}).get("dbt_schema_version") or "")
    match = re.search(r"/dbt/([a-z-]+)/v(\d+)\.json$", url)
    return (match.group(1), int(match.group(2))) if match else ("", None)


def _load_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SourceError(
            f"No dbt manifest at {str(path)!r}: run `dbt compile` (or `dbt run`, `dbt build`, `dbt docs generate`) "
            "in the project so that its target/ has manifest.json, or point config.manifest_path at one."
        )
    manifest = _read_json(path, "manifest")
    kind, version = _schema_version(manifest)
    if kind != "manifest":
        raise SourceError(
            f"{str(path)!r} is not a dbt manifest (its metadata.dbt_schema_version is "
            f"{manifest.get('metadata', {}).get('dbt_schema_version')!r}): give the target/manifest.json of a dbt run."
        )
    if version not in SUPPORTED_MANIFEST_VERSIONS:
        first, last = SUPPORTED_MANIFEST_VERSIONS[0], SUPPORTED_MANIFEST_VERSIONS[-1]
        raise SourceError(
            f"The dbt manifest {str(path)!r} is schema v{version} (dbt {manifest['metadata'].get('dbt_version')}); "
            f"this reader reads v{first} to v{last} (dbt 1.3 to 1.11): regenerate it with a dbt in that range."
        )
    for key in ("nodes", "sources"):
        if not isinstance(manifest.get(key), dict):
            raise SourceError(f"The dbt manifest {str(path)!r} has no {key!r} object: regenerate it.")
    return manifest


def _load_catalog(path: Path | None, warnings: list[str]) -> dict[str, Any]:
    """The catalog, or an empty one (columns then come from the manifest, untyped unless documented)."""
    if path is None:
        warnings.append("No catalog.json given: column types come from the manifest's data_type only.")
        return {}
    if not path.is_file():
        warnings.append(
            f"No dbt catalog at {str(path)!r}: run `dbt docs generate` for column types; "
            "columns come from the manifest meanwhile."
        )
        return {}
    catalog = _read_json(path, "catalog")
    kind, _version = _schema_version(catalog)
    if kind != "catalog":
        raise SourceError(f"{str(path)!r} is not a dbt catalog: give the target/catalog.json of `dbt docs generate`.")
    return catalog


def _render_env(value: Any) -> Any:
    """The ``{{ env_var('NAME', 'default') }}`` of a profile value, as dbt renders it (other Jinja is kept)."""
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise SourceError(
            f"The dbt profile reads the environment variable {name}, which is not set here: "
            "set config.namespace (e.g. postgres://host:5432) instead."
        )

    return _ENV_VAR.sub(one, value)


def _profile_target(config: dict[str, Any]) -> dict[str, Any] | None:
    """The profile's target output (host, port, …), or None when there is no profiles.yml to read."""
    project_dir = Path(str(config["project_dir"])).expanduser() if config.get("project_dir") else None
    profiles_dir = config.get("profiles_dir") or project_dir
    if not profiles_dir:
        return None
    profiles = _read_yaml(Path(str(profiles_dir)).expanduser() / "profiles.yml")
    if profiles is None:
        return None
    name = config.get("profile")
    if not name and project_dir is not None:
        name = (_read_yaml(project_dir / "dbt_project.yml") or {}).get("profile")
    profile = profiles.get(str(name)) if name else None
    if not isinstance(profile, dict):
        raise SourceError(f"profiles.yml in {str(profiles_dir)!r} has no profile {name!r}: set config.profile.")
    target = str(config.get("target") or _render_env(profile.get("target")) or "default")
    output = (profile.get("outputs") or {}).get(target)
    if not isinstance(output, dict):
        raise SourceError(f"The dbt profile {name!r} has no target {target!r}: set config.target.")
    return output  # rendered key by key in _namespace: only what the namespace needs (never the password)


def _namespace(config: dict[str, Any], adapter: str) -> str:
    """The warehouse's dataset namespace: config.namespace, else derived from the profile like openlineage-dbt's
    ``extract_namespace`` (processor.py)."""
    if config.get("namespace"):
        namespace = str(config["namespace"]).strip().rstrip("/")
        if "://" not in namespace and namespace != "bigquery":
            raise SourceError(f"config.namespace {namespace!r} is not a namespace URI: e.g. postgres://host:5432.")
        return namespace
    profile = _profile_target(config)
    kind = str(_render_env((profile or {}).get("type")) or adapter).lower()
    if kind == "bigquery":
        return "bigquery"
    if profile is None:
        raise SourceError(
            "Cannot tell the warehouse's namespace: set config.namespace (e.g. postgres://host:5432), or "
            "config.profiles_dir to the directory of the project's profiles.yml."
        )

    def get(key: str) -> str:
        return str(_render_env(profile[key]))

    try:
        if kind in ("postgres", "redshift", "trino", "clickhouse"):
            return f"{kind}://{get('host')}:{get('port')}"
        if kind == "snowflake":
            return f"snowflake://{get('account')}"
        if kind == "databricks":
            return f"databricks://{get('host')}"
        if kind == "sqlserver":
            return f"mssql://{get('server')}:{get('port')}"
        if kind == "duckdb":
            return f"duckdb://{get('path')}"
    except KeyError as exc:
        raise SourceError(
            f"The dbt profile's target has no {exc.args[0]!r}: set config.namespace (e.g. postgres://host:5432)."
        ) from None
    raise SourceError(f"No namespace rule for the dbt adapter {kind!r}: set config.namespace.")


# ---------------------------------------------------------------------------------------------------------------
# The project: datasets, the DAG, run events


def _owners(node: dict[str, Any]) -> tuple[str, ...]:
    meta = node.get("meta") or (node.get("config") or {}).get("meta") or {}
    owner = meta.get("owner") if isinstance(meta, dict) else None
    names = owner if isinstance(owner, list) else [owner]
    return tuple(dict.fromkeys(str(n).strip() for n in names if isinstance(n, str | int) and str(n).strip()))


def _tags(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(t) for t in values or () if str(t).strip()))


class _Project:
    def __init__(self, manifest: dict[str, Any], catalog: dict[str, Any], namespace: str) -> None:
        self.manifest = manifest
        self.catalog = catalog
        self.namespace = namespace
        self.metadata = manifest.get("metadata") or {}
        self.sources: dict[str, dict[str, Any]] = manifest["sources"]
        self.nodes: dict[str, dict[str, Any]] = manifest["nodes"]
        self.tests = self._tests_by_node()

    # -- what is a dataset -------------------------------------------------------------------------------------

    @staticmethod
    def _is_ephemeral(node: dict[str, Any]) -> bool:
        return (node.get("config") or {}).get("materialized") == "ephemeral"

    def dataset_nodes(self) -> list[tuple[str, dict[str, Any]]]:
        out = [
            (uid, node)
            for uid, node in self.nodes.items()
            if node.get("resource_type") in _DATASET_TYPES and not self._is_ephemeral(node)
        ]
        out += list(self.sources.items())
        return sorted(out)

    def job_nodes(self) -> list[tuple[str, dict[str, Any]]]:
        return sorted(
            (uid, node)
            for uid, node in self.nodes.items()
            if node.get("resource_type") in ("model", "snapshot") and not self._is_ephemeral(node)
        )

    def node(self, unique_id: str) -> dict[str, Any] | None:
        return self.nodes.get(unique_id) or self.sources.get(unique_id)

    def dataset_name(self, node: dict[str, Any]) -> str:
        """openlineage-dbt's ``_format_dataset_name(database, schema, alias or a source's name)``."""
        table = node["name"] if node.get("resource_type") == "source" else (node.get("alias") or node["name"])
        return ".".join(part for part in (node.get("database"), node.get("schema"), table) if part)

    def job_name(self, unique_id: str, node: dict[str, Any]) -> str:
        """openlineage-dbt's job name for ``dbt-ol run`` / ``dbt-ol snapshot`` (``parse_execution``)."""
        resource = node.get("resource_type", "model")
        rest = unique_id.removeprefix(f"{resource}.")
        name = ".".join(part for part in (node.get("database"), node.get("schema"), rest) if part)
        return f"{name}.snapshot" if resource == "snapshot" else name

    # -- parents ---------------------------------------------------------------------------------------------

    def _direct_parents(self, unique_id: str) -> list[str]:
        parent_map = self.manifest.get("parent_map")
        if isinstance(parent_map, dict) and unique_id in parent_map:
            return list(parent_map[unique_id])
        node = self.node(unique_id) or {}
        return list((node.get("depends_on") or {}).get("nodes") or [])

    def parents(self, unique_id: str) -> list[str]:
        """The datasets a node reads: its models, seeds, snapshots and sources, through ephemeral models."""
        out: dict[str, None] = {}
        stack, seen = list(reversed(self._direct_parents(unique_id))), {unique_id}
        while stack:
            parent = stack.pop()
            if parent in seen:
                continue
            seen.add(parent)
            node = self.node(parent)
            if node is None:
                continue
            if node.get("resource_type") == "model" and self._is_ephemeral(node):
                stack.extend(reversed(self._direct_parents(parent)))
            elif node.get("resource_type") in (*_DATASET_TYPES, "source"):
                out[parent] = None
        return list(out)

    # -- tests -----------------------------------------------------------------------------------------------

    def _tests_by_node(self) -> dict[str, list[dict[str, Any]]]:
        """The tests on each model, seed, snapshot and source: generic ones by name and column, singular by name."""
        out: dict[str, list[dict[str, Any]]] = {}
        for uid, node in sorted(self.nodes.items()):
            if node.get("resource_type") != "test":
                continue
            meta = node.get("test_metadata") or {}
            attached = node.get("attached_node")
            targets = [attached] if attached else self._direct_parents(uid)
            test = {
                "name": str(meta.get("name") or node.get("name") or uid),
                "column": node.get("column_name") or (meta.get("kwargs") or {}).get("column_name") or None,
                "unique_id": uid,
                "severity": str((node.get("config") or {}).get("severity") or "ERROR").upper(),
            }
            for target in targets:
                if target in self.nodes or target in self.sources:
                    out.setdefault(target, []).append(test)
        return out

    # -- one dataset -----------------------------------------------------------------------------------------

    def dataset(self, unique_id: str, node: dict[str, Any], warnings: list[str]) -> DatasetSnapshot:
        resource = str(node.get("resource_type") or unique_id.split(".", 1)[0])
        section = "sources" if resource == "source" else "nodes"
        catalog_node = (self.catalog.get(section) or {}).get(unique_id)
        if self.catalog and catalog_node is None:
            warnings.append(f"{unique_id} is not in catalog.json (not built yet?): columns from the manifest only.")
        tests = self.tests.get(unique_id, [])
        column_tests: dict[str, list[str]] = {}
        for test in tests:
            if test["column"]:
                column_tests.setdefault(str(test["column"]), []).append(test["name"])
        columns = self._columns(node, catalog_node, column_tests)
        config = node.get("config") or {}
        properties: dict[str, Any] = {
            "dbt_unique_id": unique_id,
            "dbt_resource_type": resource,
            "dbt_package": node.get("package_name"),
            "dbt_path": node.get("original_file_path"),
        }
        if resource == "source":
            properties["dbt_source"] = node.get("source_name")
            properties["dbt_identifier"] = node.get("identifier")
            if node.get("loader"):
                properties["dbt_loader"] = node["loader"]
            description = node.get("description") or node.get("source_description") or ""
        else:
            properties["dbt_materialized"] = config.get("materialized")
            description = node.get("description") or ""
        if tests:
            properties["dbt_tests"] = tests
        if column_tests:
            properties["dbt_column_tests"] = {k: sorted(v) for k, v in sorted(column_tests.items())}
        if catalog_node and (catalog_node.get("metadata") or {}).get("type"):
            properties["relation_type"] = catalog_node["metadata"]["type"]
        meta = {k: v for k, v in (node.get("meta") or {}).items() if k != "owner"}
        if meta:
            properties["dbt_meta"] = meta
        return DatasetSnapshot(
            namespace=self.namespace,
            name=self.dataset_name(node),
            kind=resource,
            description=str(description).strip(),
            columns=columns,
            owners=_owners(node),
            tags=_tags(node.get("tags")),
            properties={k: v for k, v in properties.items() if v is not None},
        )

    @staticmethod
    def _columns(
        node: dict[str, Any], catalog_node: dict[str, Any] | None, column_tests: dict[str, list[str]]
    ) -> tuple[ColumnSnapshot, ...]:
        documented: dict[str, dict[str, Any]] = node.get("columns") or {}
        by_lower = {name.lower(): spec for name, spec in documented.items()}
        tests_lower = {name.lower(): names for name, names in column_tests.items()}

        def column(name: str, type_: str, ordinal: int) -> ColumnSnapshot:
            spec = documented.get(name) or by_lower.get(name.lower()) or {}
            not_null = "not_null" in tests_lower.get(name.lower(), [])
            return ColumnSnapshot(
                name=name,
                type=type_ or str(spec.get("data_type") or ""),
                ordinal=ordinal,
                # A not_null test is the project's promise that the column has no nulls; nothing else says.
                nullable=False if not_null else None,
                description=str(spec.get("description") or "").strip(),
                tags=_tags(spec.get("tags")),
            )

        if catalog_node:
            cols = sorted((catalog_node.get("columns") or {}).values(), key=lambda c: int(c.get("index") or 0))
            return tuple(
                column(str(c["name"]), str(c.get("type") or ""), int(c.get("index") or i + 1))
                for i, c in enumerate(cols)
            )
        return tuple(column(name, "", i + 1) for i, name in enumerate(documented))

    # -- one run event ---------------------------------------------------------------------------------------

    def run_event(
        self, unique_id: str, node: dict[str, Any], job_namespace: str, adapter: str, warnings: list[str]
    ) -> dict[str, Any]:
        inputs = [self.dataset_name(self.node(p) or {}) for p in self.parents(unique_id)]
        output: dict[str, Any] = {"namespace": self.namespace, "name": self.dataset_name(node), "facets": {}}
        sql = node.get("compiled_code") or node.get("compiled_sql") or ""
        job_facets: dict[str, Any] = {
            "jobType": {
                "_producer": PRODUCER,
                "_schemaURL": _JOB_TYPE_SCHEMA,
                "jobType": "SNAPSHOT" if node.get("resource_type") == "snapshot" else "MODEL",
                "integration": "DBT",
                "processingType": "BATCH",
            }
        }
        if sql:
            job_facets["sql"] = {"_producer": PRODUCER, "_schemaURL": _SQL_SCHEMA, "query": sql, "dialect": adapter}
            fields = self._column_lineage(unique_id, node, sql, adapter, set(inputs), warnings)
            if fields:
                output["facets"]["columnLineage"] = {
                    "_producer": PRODUCER,
                    "_schemaURL": _COLUMN_LINEAGE_SCHEMA,
                    "fields": fields,
                }
        invocation = str(self.metadata.get("invocation_id") or "")
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"steward:dbt:{invocation}:{self.namespace}:{unique_id}")
        return {
            "eventType": "COMPLETE",
            "eventTime": str(self.metadata.get("generated_at") or ""),
            "producer": PRODUCER,
            "schemaURL": _RUN_EVENT_SCHEMA,
            "run": {"runId": str(run_id), "facets": {}},
            "job": {"namespace": job_namespace, "name": self.job_name(unique_id, node), "facets": job_facets},
            "inputs": [{"namespace": self.namespace, "name": name, "facets": {}} for name in inputs],
            "outputs": [output],
        }

    def _column_lineage(
        self, unique_id: str, node: dict[str, Any], sql: str, adapter: str, inputs: set[str], warnings: list[str]
    ) -> dict[str, Any]:
        """``{output column: {"inputFields": [...]}}`` from the compiled SQL, keeping only input columns of the
        model's own inputs (a CTE's computed column, e.g. ``count(*)``, has no origin table and is left out), so
        column lineage never names a dataset that does not exist."""
        from openlineage_sql import parse  # the Rust parser, loaded only when a project has compiled SQL

        try:
            try:
                parsed = parse([sql], dialect=adapter or None, default_schema=node.get("schema"))
            except ValueError:  # a dialect the parser does not know: its generic one
                parsed = parse([sql], default_schema=node.get("schema"))
        except Exception as exc:  # the parser raises its own error types; a model without column lineage is fine
            warnings.append(f"{unique_id}: the compiled SQL did not parse for column lineage ({exc}).")
            return {}
        if parsed is None:
            return {}
        fields: dict[str, Any] = {}
        for item in parsed.column_lineage:
            sources = []
            for col in item.lineage:
                origin = col.origin
                if origin is None:
                    continue
                name = ".".join(p for p in (origin.database or node.get("database"), origin.schema, origin.name) if p)
                name = column_origin(name, origin.name, inputs)
                if name:
                    sources.append({"namespace": self.namespace, "name": name, "field": col.name})
            if sources:
                fields[item.descendant.name] = {"inputFields": sources}
        return dict(sorted(fields.items()))

"""A data steward cannot make Steward read any file on the server: the paths a dbt source reads must be inside a
directory an administrator allowed (``STEWARD_SOURCE_ALLOWED_PATHS``), checked when the source is saved (400 naming
the field) and again when it is crawled (the run fails saying why; nothing is read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.sources.base import SourceError
from connectors.sources.dbt import DbtReader


@pytest.fixture
def allowed(tmp_path: Path, settings) -> Path:
    root = tmp_path / "dbt-projects"
    (root / "shop" / "target").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "manifest.json").write_text(json.dumps({"metadata": {}}))
    settings.STEWARD_SOURCE_ALLOWED_PATHS = [str(root)]
    return root


def _post(client: Any, config: dict[str, Any]) -> Any:
    return client.post("/api/v1/sources", {"name": "shop-dbt", "kind": "dbt", "config": config}, format="json")


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("project_dir", "/etc"),
        ("manifest_path", "/etc/passwd"),
        ("catalog_path", "{tmp}/elsewhere/catalog.json"),
        ("profiles_dir", "{root}/../elsewhere"),  # `..` leads out of the allowed directory
        ("project_dir", "{root}/link-out"),  # a symbolic link inside leads out of it
        ("project_dir", "dbt-projects/shop"),  # relative: relative to what?
    ],
)
@pytest.mark.django_db
def test_a_path_outside_the_allowed_directories_is_refused_naming_the_field(
    allowed: Path, client_for, data_steward, key: str, path: str
):
    (allowed / "link-out").symlink_to(allowed.parent / "elsewhere")
    config = {key: path.format(root=allowed, tmp=allowed.parent), "namespace": "postgres://wh:5432"}
    response = _post(client_for(data_steward), config)
    assert response.status_code == 400, response.content
    assert f"config.{key}" in response.content.decode()
    with pytest.raises(SourceError, match=f"config.{key} .* may not be read"):
        DbtReader().read(config, {})


@pytest.mark.django_db
def test_a_path_inside_is_accepted_and_changing_it_to_outside_is_refused(allowed: Path, client_for, data_steward):
    steward = client_for(data_steward)
    response = _post(steward, {"project_dir": str(allowed / "shop")})
    assert response.status_code == 201, response.content
    source = response.json()
    response = steward.patch(f"/api/v1/sources/{source['id']}", {"config": {"project_dir": "/root"}}, format="json")
    assert response.status_code == 400 and "config.project_dir" in response.content.decode()


@pytest.mark.django_db
def test_no_allowed_directory_means_no_file_is_read(
    allowed: Path, settings, client_for, data_steward, django_capture_on_commit_callbacks
):
    steward = client_for(data_steward)
    source = _post(steward, {"project_dir": str(allowed / "shop")}).json()
    settings.STEWARD_SOURCE_ALLOWED_PATHS = []  # the administrator closes it after the source was saved
    response = _post(steward, {"project_dir": str(allowed / "shop")})
    assert response.status_code == 400
    assert "STEWARD_SOURCE_ALLOWED_PATHS" in response.content.decode()
    # The crawl checks again: the run fails saying why, before reading anything.
    with django_capture_on_commit_callbacks(execute=True):
        steward.post(f"/api/v1/sources/{source['id']}/crawl")
    run = steward.get(f"/api/v1/sources/{source['id']}/runs").json()["results"][0]
    assert run["state"] == "failed"
    assert "may not be read" in run["error"] and "STEWARD_SOURCE_ALLOWED_PATHS" in run["error"]


def test_artifacts_reached_through_target_path_are_checked_too(allowed: Path):
    """A project inside, whose ``target_path`` leads out: the manifest it names is not read."""
    with pytest.raises(SourceError, match="dbt manifest .* may not be read"):
        DbtReader().read({"project_dir": str(allowed / "shop"), "target_path": "../../elsewhere"}, {})

"""A high-memory JupyterLab profile beside CPU and GPU (as StatCan's platform offers all three)."""

from django.db import migrations

GI = 2**30
HIGHMEM = {
    "name": "jupyter-highmem",
    "title": "JupyterLab (high memory)",
    "description": "JupyterLab with the scientific Python stack and a large memory allowance, for in-memory work "
    "on big tables.",
    "image": "kubeflownotebookswg/jupyter-scipy:v1.9.2",
    "local_command": [
        "jupyter-lab",
        "--no-browser",
        "--ip={host}",
        "--port={port}",
        "--ServerApp.root_dir={home}",
        "--IdentityProvider.token={token}",
    ],
    "cpu_millis": 2000,
    "memory_bytes": 24 * GI,
    "gpu": 0,
    "position": 25,
}


def add_template(apps, schema_editor):
    Template = apps.get_model("workspaces", "Template")
    Template.objects.update_or_create(name=HIGHMEM["name"], defaults={k: v for k, v in HIGHMEM.items() if k != "name"})


def remove_template(apps, schema_editor):
    apps.get_model("workspaces", "Template").objects.filter(name=HIGHMEM["name"]).delete()


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0002_templates")]
    operations = [migrations.RunPython(add_template, remove_template)]

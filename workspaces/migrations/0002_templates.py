"""The first templates: JupyterLab on CPU and on GPU, and VS Code (code-server), as Kubeflow images."""

from django.db import migrations

GI = 2**30
JUPYTER_LOCAL = [
    "jupyter-lab",
    "--no-browser",
    "--ip={host}",
    "--port={port}",
    "--ServerApp.root_dir={home}",
    "--IdentityProvider.token={token}",
]
TEMPLATES = [
    {
        "name": "jupyter-cpu",
        "title": "JupyterLab (CPU)",
        "description": "JupyterLab with the scientific Python stack.",
        "image": "kubeflownotebookswg/jupyter-scipy:v1.9.2",
        "local_command": JUPYTER_LOCAL,
        "cpu_millis": 1000,
        "memory_bytes": 2 * GI,
        "gpu": 0,
        "position": 10,
    },
    {
        "name": "jupyter-gpu",
        "title": "JupyterLab (GPU, PyTorch + CUDA)",
        "description": "JupyterLab with PyTorch and CUDA on one GPU.",
        "image": "kubeflownotebookswg/jupyter-pytorch-cuda-full:v1.9.2",
        "local_command": JUPYTER_LOCAL,
        "cpu_millis": 4000,
        "memory_bytes": 16 * GI,
        "gpu": 1,
        "position": 20,
    },
    {
        "name": "vscode",
        "title": "VS Code (code-server)",
        "description": "VS Code in the browser, with Python.",
        "image": "kubeflownotebookswg/codeserver-python:v1.9.2",
        "local_command": ["code-server", "--bind-addr", "{host}:{port}", "--auth", "none", "{home}"],
        "cpu_millis": 1000,
        "memory_bytes": 2 * GI,
        "gpu": 0,
        "position": 30,
    },
]


def add_templates(apps, schema_editor):
    Template = apps.get_model("workspaces", "Template")
    for fields in TEMPLATES:
        Template.objects.update_or_create(name=fields["name"], defaults={k: v for k, v in fields.items() if k != "name"})


def remove_templates(apps, schema_editor):
    apps.get_model("workspaces", "Template").objects.filter(name__in=[t["name"] for t in TEMPLATES]).delete()


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0001_initial")]

    operations = [migrations.RunPython(add_templates, remove_templates)]

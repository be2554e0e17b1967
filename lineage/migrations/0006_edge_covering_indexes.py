"""The open-edge indexes cover (near, far, job): graph hops and the propagation walk become index-only scans."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lineage", "0005_propagatedtag_lighter_writes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="edge",
            name="edge_source_open",
        ),
        migrations.RemoveIndex(
            model_name="edge",
            name="edge_target_open",
        ),
        migrations.AddIndex(
            model_name="edge",
            index=models.Index(fields=["source", "valid_to"], include=("target", "job"), name="edge_source_open"),
        ),
        migrations.AddIndex(
            model_name="edge",
            index=models.Index(fields=["target", "valid_to"], include=("source", "job"), name="edge_target_open"),
        ),
    ]

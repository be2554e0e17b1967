"""Test settings: the real PostgreSQL started by ``scripts/services`` unless DATABASE_URL says otherwise."""

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://steward:steward@127.0.0.1:54320/steward")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:56379/0")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
# Single sign-on against the Keycloak test server (scripts/services/keycloak.sh, realm keycloak-realm.json).
os.environ.setdefault("OIDC_OP_ISSUER", "http://127.0.0.1:58080/realms/steward")
os.environ.setdefault("OIDC_RP_CLIENT_ID", "steward")
os.environ.setdefault("OIDC_RP_CLIENT_SECRET", "steward-dev-secret")
# The dbt projects tests build live in pytest's temporary directories.
os.environ.setdefault("STEWARD_SOURCE_ALLOWED_PATHS", tempfile.gettempdir())

from steward.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Two test runs at once (two developers' checkouts, or helpers) each get their own test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": "test_steward" + os.environ.get("STEWARD_TEST_DB_SUFFIX", "")}  # noqa: F405

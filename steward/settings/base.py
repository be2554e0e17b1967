"""Settings for every environment. Values come from ``steward.env``; defaults are the embedded mode.

The embedded default (``make run``) needs no server: SQLite, Celery on kombu's filesystem transport,
the ``database`` search backend, the ``sql`` graph backend and ``local`` workspaces.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from steward.env import BASE_DIR, env_bool, env_int, env_json, env_list, env_str

STATE_DIR = Path(
    env_str(
        "STEWARD_STATE_DIR",
        str(BASE_DIR / ".state"),
        "Where the embedded mode keeps its SQLite file, broker queue and beat schedule.",
        shown="./.state",
    )
)

SECRET_KEY = env_str(
    "STEWARD_SECRET_KEY",
    "embedded-insecure-change-me",
    "Django secret key. Set a long random value in production.",
)
DEBUG = env_bool("STEWARD_DEBUG", False, "Django debug mode (never in production).")
ALLOWED_HOSTS = env_list("STEWARD_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"], "Host names served.")
CSRF_TRUSTED_ORIGINS = env_list("STEWARD_CSRF_TRUSTED_ORIGINS", [], "Origins trusted for CSRF (https://host).")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "mozilla_django_oidc",
    "axes",
    # Steward's apps, bottom layer first (docs/architecture.md; tests/steward/test_layers.py).
    "ledger",
    "accounts",
    "connectors",
    "catalog",
    "lineage",
    "sources",
    "governance",
    "workspaces",
    "compliance",
    "frontend",
    "interop",
]

MIDDLEWARE = [
    "steward.middleware.RequestIdMiddleware",
    "steward.metrics.MetricsMiddleware",
    "steward.chunked.ChunkedBodyMiddleware",
    "steward.middleware.BodySizeLimitMiddleware",
    "steward.middleware.RefuseNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "steward.urls"
WSGI_APPLICATION = "steward.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context.steward",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASE_URL = env_str(
    "DATABASE_URL",
    f"sqlite:///{STATE_DIR / 'steward.sqlite3'}",
    "System of record. postgres://user:pass@host:port/db in production; SQLite file by default.",
    shown="sqlite:///$STEWARD_STATE_DIR/steward.sqlite3",
)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int(
            "STEWARD_DB_CONN_MAX_AGE", 60, "Seconds a database connection is kept open (0 closes after each request)."
        ),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the Celery worker read while the other writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
# Typo tolerance of the database search backend on PostgreSQL: how alike a misspelt word must be (pg_trgm).
_typo_threshold = env_str(
    "STEWARD_SEARCH_TYPO_THRESHOLD", "0.3", "PostgreSQL search: trigram similarity (0..1) a typo correction needs."
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c pg_trgm.similarity_threshold={_typo_threshold}"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "login"

OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", "", "OIDC client id; setting it (with the endpoints) turns OIDC on.")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET", "", "OIDC client secret.")
OIDC_OP_ISSUER = env_str(
    "OIDC_OP_ISSUER",
    "",
    "Provider issuer URL (Keycloak: http://host/realms/<realm>); the endpoints below default to Keycloak's under it.",
)
_kc = f"{OIDC_OP_ISSUER.rstrip('/')}/protocol/openid-connect" if OIDC_OP_ISSUER else ""
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str(
    "OIDC_OP_AUTHORIZATION_ENDPOINT", f"{_kc}/auth" if _kc else "", "Provider authorization URL.", shown=""
)
OIDC_OP_TOKEN_ENDPOINT = env_str(
    "OIDC_OP_TOKEN_ENDPOINT", f"{_kc}/token" if _kc else "", "Provider token URL.", shown=""
)
OIDC_OP_USER_ENDPOINT = env_str(
    "OIDC_OP_USER_ENDPOINT", f"{_kc}/userinfo" if _kc else "", "Provider userinfo URL.", shown=""
)
OIDC_OP_JWKS_ENDPOINT = env_str(
    "OIDC_OP_JWKS_ENDPOINT", f"{_kc}/certs" if _kc else "", "Provider JWKS URL (ID and access tokens).", shown=""
)
OIDC_OP_LOGOUT_ENDPOINT = env_str(
    "OIDC_OP_LOGOUT_ENDPOINT",
    f"{_kc}/logout" if _kc else "",
    "Provider end_session_endpoint: logout ends the provider's session too.",
    shown="",
)
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256", "ID and access token signing algorithm.")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile", "Scopes requested at login.")
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True, "Authorization code flow with PKCE (S256).")
OIDC_STORE_ID_TOKEN = True  # the ID token is the end-session hint at logout
OIDC_OP_LOGOUT_URL_METHOD = "accounts.sso.provider_logout_url"
STEWARD_OIDC_ROLES_CLAIM = env_str(
    "STEWARD_OIDC_ROLES_CLAIM", "groups", "Claim whose values map to Steward roles (data-steward, admin, ...)."
)
STEWARD_OIDC_GROUP_ROLES = dict(
    item.split("=", 1)
    for item in env_list(
        "STEWARD_OIDC_GROUP_ROLES", [], "IdP group to Steward role, e.g. stewards=data-steward (default: same name)."
    )
    if "=" in item
)
STEWARD_OIDC_EXTRA_ROLES = env_list(
    "STEWARD_OIDC_EXTRA_ROLES", ["lineage-producer"], "Role names IdP groups may grant besides the built-in ones."
)
STEWARD_OIDC_AUDIENCE = env_str(
    "STEWARD_OIDC_AUDIENCE", OIDC_RP_CLIENT_ID, "Audience bearer access tokens must carry.", shown="OIDC_RP_CLIENT_ID"
)
STEWARD_OIDC_LEEWAY_SECONDS = env_int("STEWARD_OIDC_LEEWAY_SECONDS", 30, "Clock skew allowed on token expiry.")
STEWARD_OIDC_JWKS_CACHE_SECONDS = env_int("STEWARD_OIDC_JWKS_CACHE_SECONDS", 300, "How long JWKS keys are cached.")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID and OIDC_OP_AUTHORIZATION_ENDPOINT and OIDC_OP_TOKEN_ENDPOINT)
OIDC_DRF_AUTH_BACKEND = "accounts.oidc.StewardOIDCBackend"

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.insert(0, "accounts.oidc.StewardOIDCBackend")
# django-axes first: every password check (the HTML login, the admin's) counts failures and refuses a locked one.
AUTHENTICATION_BACKENDS.insert(0, "axes.backends.AxesStandaloneBackend")

# --- Web defences (docs/security.md) ----------------------------------------------------------------
AXES_FAILURE_LIMIT = env_int(
    "STEWARD_LOGIN_FAILURE_LIMIT", 5, "Wrong passwords in a row before a login is locked (django-axes)."
)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int(
        "STEWARD_LOGIN_COOLOFF_MINUTES", 15, "Minutes a locked login stays locked (then it unlocks itself)."
    )
)
AXES_LOCKOUT_PARAMETERS = [
    [part.strip() for part in item.split("+")]
    for item in env_list(
        "STEWARD_LOGIN_LOCKOUT_BY",
        ["username"],
        "What a lockout is counted by: username, ip_address, user_agent, or combinations like username+ip_address "
        "(ip_address needs STEWARD_LOGIN_PROXY_COUNT behind a proxy).",
    )
]
AXES_IPWARE_PROXY_COUNT = (
    env_int(
        "STEWARD_LOGIN_PROXY_COUNT", 0, "Reverse proxies in front of Steward (how many X-Forwarded-For hops to skip)."
    )
    or None
)
AXES_RESET_ON_SUCCESS = True
# axes.W006 asks for ip_address in the lockout parameters. Not by default: behind a proxy whose hops are not
# counted (STEWARD_LOGIN_PROXY_COUNT), every client shares the proxy's address and one attacker would lock
# everyone out. Add it (STEWARD_LOGIN_LOCKOUT_BY=username,ip_address) once the proxy count is right.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool(
    "STEWARD_SECURE_COOKIES", False, "Send session and CSRF cookies over HTTPS only (set when served over TLS)."
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
if env_bool(
    "STEWARD_BEHIND_TLS_PROXY",
    False,
    "A TLS-terminating proxy sets X-Forwarded-Proto: trust it for request.is_secure() (only if it always sets it).",
):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("STEWARD_SSL_REDIRECT", False, "Redirect plain-HTTP requests to HTTPS.")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int(
    "STEWARD_HSTS_SECONDS", 0, "Strict-Transport-Security max-age on HTTPS responses (0: none; e.g. 31536000)."
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("STEWARD_HSTS_INCLUDE_SUBDOMAINS", False, "Add includeSubDomains to HSTS.")
SECURE_HSTS_PRELOAD = env_bool("STEWARD_HSTS_PRELOAD", False, "Add preload to HSTS.")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page and API response (django-csp): scripts and styles only from Steward's own static files, no inline
# code (htmx's own indicator styles are off, see base.html), nothing may frame Steward.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'", *([OIDC_OP_AUTHORIZATION_ENDPOINT] if OIDC_ENABLED else [])],
        "frame-ancestors": ["'none'"],
    }
}

# --- Apache Atlas (interop/atlas.py) --------------------------------------------------------------------
STEWARD_ATLAS_URL = env_str(
    "STEWARD_ATLAS_URL", "", "Apache Atlas base URL (http://host:21000) for atlas_export --push."
)
STEWARD_ATLAS_USERNAME = env_str("STEWARD_ATLAS_USERNAME", "admin", "Apache Atlas user (basic auth).")
STEWARD_ATLAS_PASSWORD = env_str("STEWARD_ATLAS_PASSWORD", "", "Apache Atlas password (basic auth; never logged).")
STEWARD_ATLAS_PUSH_SECONDS = env_int(
    "STEWARD_ATLAS_PUSH_SECONDS", 3600, "With STEWARD_ATLAS_URL: push what changed to Atlas this often (Celery beat)."
)

# --- REST API ---------------------------------------------------------------------------------------
_api_auth = [
    "accounts.authentication.ApiTokenAuthentication",
    # Provider-signed JWT access tokens; a no-op unless OIDC_OP_JWKS_ENDPOINT is set (accounts.sso).
    "accounts.sso.OIDCBearerAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": _api_auth,
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.authentication.TokenScopePermission",
    ],
    "DEFAULT_PARSER_CLASSES": ["steward.api.parsers.StewardJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_METADATA_CLASS": "steward.api.metadata.StewardMetadata",
    "DEFAULT_PAGINATION_CLASS": "steward.api.pagination.StewardCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "steward.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Steward API",
    "DESCRIPTION": "Metadata, lineage and governance for data-science platforms.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ApproverRoleEnum": "governance.choices.ApproverRole"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "steward.api.schema.document_errors",
    ],
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int(
    "STEWARD_MAX_REQUEST_BYTES", 64 * 1024 * 1024, "Largest request body accepted (bytes); larger gets 413."
)

# --- Celery -----------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str(
    "CELERY_BROKER_URL",
    "filesystem://localhost/",
    "Celery broker: redis://..., amqp://..., or filesystem:// (embedded, no server).",
)
CELERY_BROKER_DIR = STATE_DIR / "broker"
# Declared whatever the broker, so the README's table lists it.
_CELERY_VISIBILITY_TIMEOUT = env_int(
    "STEWARD_CELERY_VISIBILITY_TIMEOUT",
    3600,
    "Redis broker: seconds before a task a killed worker held is delivered again (docs/architecture.md).",
)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        # kombu's exchange tables; its default is ./control in the working directory.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # kombu sleeps this long whenever the worker cannot take a message (all its slots busy, or none
        # queued): at the default 1 s the embedded worker ran about two tasks a second.
        "polling_interval": 0.1,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {
        # Redis: a message a worker took and never acknowledged (the worker was killed) goes back to the queue
        # this many seconds after delivery. Longer than any task runs or waits for a retry countdown (5 min),
        # or a slow task would run twice at once (harmless, every task is idempotent, but wasted).
        "visibility_timeout": _CELERY_VISIBILITY_TIMEOUT
    }
)
CELERY_TASK_DEFAULT_QUEUE = env_str(
    "STEWARD_CELERY_QUEUE", "celery", "Celery queue name; deployments sharing one broker database each need their own."
)
CELERY_TASK_ALWAYS_EAGER = env_bool(
    "CELERY_TASK_ALWAYS_EAGER", False, "Run tasks in-process instead of on a worker (scripts, some tests)."
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(STATE_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # Catches up after a crash or a broker outage; each change also queues its own drain on commit.
    "lineage-propagation-drain": {"task": "lineage.propagation_drain", "schedule": 60.0},
    "lineage-inbox-drain": {"task": "lineage.inbox_drain", "schedule": 60.0},
    # Display state and the grant_changed hook only: decisions compare times and never wait for these.
    "governance-grants-expire": {"task": "governance.grants_expire", "schedule": 60.0},
    "governance-access-requests-expire": {"task": "governance.access_requests_expire", "schedule": 60.0},
    # Usage counters (opens, requests, lineage) reach search ranking in batches, not one reindex per page view.
    "catalog-popularity-flush": {"task": "catalog.popularity_flush", "schedule": 300.0},
}

# --- Steward ----------------------------------------------------------------------------------------
STEWARD_SEARCH_BACKEND = env_str(
    "STEWARD_SEARCH_BACKEND",
    "database",
    "Search backend: database (PostgreSQL full text, or SQLite) or elasticsearch (an Elasticsearch 8.x cluster).",
)
STEWARD_ELASTICSEARCH_URL = env_str(
    "STEWARD_ELASTICSEARCH_URL",
    "http://127.0.0.1:59200",
    "Elasticsearch search backend: the cluster URL (scripts/services/elasticsearch.sh serves this one).",
)
STEWARD_SEARCH_OPTIONS = env_json("STEWARD_SEARCH_OPTIONS", {}, "JSON options for the search backend.")
STEWARD_BACKENDS = {
    "search": {
        "database": "catalog.search.backends.database.DatabaseSearchBackend",
        "elasticsearch": "catalog.search.backends.elasticsearch.ElasticsearchSearchBackend",
    },
    "graph": {
        "sql": "lineage.graph.sql.SqlGraphBackend",
        "neo4j": "lineage.graph.neo4j.Neo4jGraphBackend",
    },
    "workspace": {
        "local": "connectors.workspaces.local.LocalWorkspaceConnector",
        "kubernetes": "connectors.workspaces.kubernetes.KubernetesWorkspaceConnector",
    },
}
STEWARD_GRAPH_BACKEND = env_str(
    "STEWARD_GRAPH_BACKEND", "sql", "Lineage graph backend: sql (one indexed query per hop) or neo4j (a projection)."
)
_NEO4J = {
    "url": env_str("STEWARD_NEO4J_URL", "bolt://127.0.0.1:7687", "Neo4j Bolt URL (graph backend neo4j)."),
    "user": env_str("STEWARD_NEO4J_USER", "", "Neo4j user; blank when authentication is off."),
    "password": env_str("STEWARD_NEO4J_PASSWORD", "", "Neo4j password."),
}
STEWARD_GRAPH_OPTIONS = _NEO4J if STEWARD_GRAPH_BACKEND == "neo4j" else {}
STEWARD_WORKSPACE_CONNECTOR = env_str(
    "STEWARD_WORKSPACE_CONNECTOR",
    "local",
    "Workspace connector: local (processes on this host) or kubernetes (Kubeflow Notebooks).",
)
# Options of the kubernetes connector (connectors/workspaces/kubernetes.py); declared whatever the connector.
_KUBERNETES = {
    "kubeconfig": env_str(
        "STEWARD_K8S_KUBECONFIG", "", "Kubeconfig file for the kubernetes connector; empty: in-cluster service account."
    ),
    "context": env_str("STEWARD_K8S_CONTEXT", "", "Kubeconfig context to use; empty: its current context."),
    "namespace_prefix": env_str(
        "STEWARD_K8S_NAMESPACE_PREFIX",
        "steward-",
        "Prefix of workspace namespaces (then u-USER or p-PROJECT).",
    ),
    "url_template": env_str(
        "STEWARD_K8S_WORKSPACE_URL",
        "/notebook/{namespace}/{name}/",
        "Workspace URL through the gateway; {namespace}, {name}, {id} and {owner} are filled in.",
    ),
    "gateway_namespace": env_str(
        "STEWARD_K8S_GATEWAY_NAMESPACE", "istio-system", "The only namespace allowed to reach workspace pods (ingress)."
    ),
    "user_cluster_role": env_str(
        "STEWARD_K8S_USER_CLUSTER_ROLE",
        "edit",
        "ClusterRole bound to a user in their namespace (Kubeflow: kubeflow-edit).",
    ),
    "quota": env_json(
        "STEWARD_K8S_QUOTA",
        {
            "requests.cpu": "8",
            "requests.memory": "32Gi",
            "limits.cpu": "16",
            "limits.memory": "64Gi",
            "requests.nvidia.com/gpu": "2",
            "persistentvolumeclaims": "10",
            "requests.storage": "200Gi",
        },
        "ResourceQuota hard limits of each workspace namespace (JSON: resource name -> quantity).",
    ),
    "limits": env_json(
        "STEWARD_K8S_LIMITS",
        {
            "max": {"cpu": "8", "memory": "32Gi"},
            "default": {"cpu": "1", "memory": "2Gi"},
            "defaultRequest": {"cpu": "500m", "memory": "1Gi"},
        },
        "LimitRange per container in workspace namespaces (JSON: max, default, defaultRequest, ...).",
    ),
    "storage": env_str("STEWARD_K8S_STORAGE", "10Gi", "Size of each workspace's home volume (PVC)."),
    "storage_class": env_str("STEWARD_K8S_STORAGE_CLASS", "", "StorageClass of home volumes; empty: the default."),
    "timeout": env_int("STEWARD_K8S_TIMEOUT", 10, "Seconds one Kubernetes API request may take."),
    "cache_seconds": env_int(
        "STEWARD_K8S_CACHE_SECONDS",
        300,
        "Seconds a namespace's shared objects (and a validated pod template) count as applied; 0: every apply.",
    ),
    "watch": env_bool(
        "STEWARD_K8S_WATCH",
        True,
        "Keep the managed Notebooks by a watch, so a periodic pass lists only their names; 0: a whole list each pass.",
    ),
}
# Options of the local connector (connectors/workspaces/local.py): one process per workspace on this host.
_LOCAL = {"state_dir": str(STATE_DIR / "workspaces")}
STEWARD_WORKSPACE_OPTIONS = _KUBERNETES if STEWARD_WORKSPACE_CONNECTOR == "kubernetes" else _LOCAL
STEWARD_WORKSPACE_RECONCILE_LEASE_SECONDS = env_int(
    "STEWARD_WORKSPACE_RECONCILE_LEASE_SECONDS",
    120,
    "Seconds one reconciler holds a workspace (a killed worker's claim runs out then); above the slowest connector.",
)
# Workspaces (workspaces/, docs/workspaces.md): quotas, the reconcile period, where mounts' credentials come from.
STEWARD_WORKSPACE_QUOTA = env_json(
    "STEWARD_WORKSPACE_QUOTA",
    {"workspaces": 5, "cpu": "8", "memory": "32Gi", "gpu": 1},
    "Per-user workspace quota (JSON): workspaces not deleted; cpu, memory, gpu of the running ones together.",
)
STEWARD_WORKSPACE_USER_QUOTAS = env_json(
    "STEWARD_WORKSPACE_USER_QUOTAS",
    {},
    'Per-user overrides of the workspace quota (JSON: {"username": {"cpu": "16", ...}}).',
)
STEWARD_WORKSPACE_RECONCILE_SECONDS = env_int(
    "STEWARD_WORKSPACE_RECONCILE_SECONDS",
    60,
    "Seconds between workspace reconcile passes (grant expiry reaches a workspace within one).",
)
STEWARD_WORKSPACE_CREDENTIALS = env_str(
    "STEWARD_WORKSPACE_CREDENTIALS",
    "workspaces.credentials.grant_token_credentials",
    "Dotted path of the function giving a workspace the credentials of one mounted dataset's grant.",
)
if STEWARD_ATLAS_URL:
    CELERY_BEAT_SCHEDULE["interop-atlas-push"] = {
        "task": "interop.atlas_push",
        "schedule": float(STEWARD_ATLAS_PUSH_SECONDS),
    }
CELERY_BEAT_SCHEDULE["workspaces-reconcile"] = {
    "task": "workspaces.reconcile_due",
    "schedule": float(STEWARD_WORKSPACE_RECONCILE_SECONDS),
}
STEWARD_LINEAGE_MAX_DEPTH = env_int("STEWARD_LINEAGE_MAX_DEPTH", 10, "Largest depth a lineage graph query may ask.")
STEWARD_LINEAGE_DEFAULT_NODES = env_int(
    "STEWARD_LINEAGE_DEFAULT_NODES", 500, "Datasets a lineage graph answer holds when the caller gives no limit."
)
STEWARD_LINEAGE_MAX_NODES = env_int(
    "STEWARD_LINEAGE_MAX_NODES", 5000, "Largest `limit` (datasets) a lineage graph query may ask."
)
STEWARD_LINEAGE_MAX_EVENT_BYTES = env_int(
    "STEWARD_LINEAGE_MAX_EVENT_BYTES", 16_777_216, "Largest single OpenLineage event accepted (bytes); more is 413."
)
STEWARD_LINEAGE_STORED_EVENT_BYTES = env_int(
    "STEWARD_LINEAGE_STORED_EVENT_BYTES",
    1_048_576,
    "Above this size (bytes), facets Steward does not use are dropped from a stored event, largest first.",
)
STEWARD_LINEAGE_INGEST = env_str(
    "STEWARD_LINEAGE_INGEST",
    "direct",
    "direct: POST /lineage and /lineage/batch apply events before answering (201/200); queued: they answer 202 once "
    "the events are validated, authorised and stored, and the lineage.inbox_drain task applies them in batches "
    "(a producer may ask for queued with the header Prefer: respond-async either way).",
)
STEWARD_LINEAGE_INBOX_LINGER_MS = env_int(
    "STEWARD_LINEAGE_INBOX_LINGER_MS",
    1000,
    "Queued ingestion: milliseconds between an accepted call and the drain it queues (calls meanwhile join that "
    "drain), so that a burst of single events is applied in batches.",
)
STEWARD_LINEAGE_INBOX_LIMIT = env_int(
    "STEWARD_LINEAGE_INBOX_LIMIT",
    200_000,
    "Queued ingestion: events that may wait in the inbox; while as many wait, queued calls answer 503 with "
    "Retry-After and store nothing (OpenLineage clients resend), direct calls are unaffected; 0: no limit.",
)
STEWARD_LINEAGE_INBOX_RETRY_AFTER_S = env_int(
    "STEWARD_LINEAGE_INBOX_RETRY_AFTER_S",
    5,
    "Queued ingestion: the Retry-After (seconds) of the 503 a full inbox answers.",
)
if STEWARD_LINEAGE_INGEST not in ("direct", "queued"):
    raise ValueError(f"STEWARD_LINEAGE_INGEST must be direct or queued, got {STEWARD_LINEAGE_INGEST!r}")
if STEWARD_LINEAGE_INBOX_LIMIT < 0 or STEWARD_LINEAGE_INBOX_RETRY_AFTER_S < 1:
    raise ValueError("STEWARD_LINEAGE_INBOX_LIMIT must be >= 0 and STEWARD_LINEAGE_INBOX_RETRY_AFTER_S >= 1")
STEWARD_GC_THRESHOLD = env_str(
    "STEWARD_GC_THRESHOLD",
    "50000,50,100",
    "Garbage-collector thresholds of the web and Celery worker processes (steward/gctune.py; objects alive once "
    "the app is loaded are frozen); empty: Python's defaults.",
)
STEWARD_CLASSIFICATION_LEVELS = env_json(
    "STEWARD_CLASSIFICATION_LEVELS",
    [
        {"code": "C1", "name": "Public", "hides_metadata": False},
        {"code": "C2", "name": "Internal", "hides_metadata": False},
        {"code": "C3", "name": "Confidential", "hides_metadata": False},
        {"code": "C4", "name": "Secret", "hides_metadata": True},
    ],
    "Ordered classification levels, lowest first; hides_metadata hides an asset from non-holders.",
)
STEWARD_SEARCH_INDEX_BATCH = 500

# --- Data-plane enforcement (connectors/dataplane, docs/enforcement.md) ----------------------------
STEWARD_DATAPLANE_CONNECTOR = env_str(
    "STEWARD_DATAPLANE_CONNECTOR", "postgres", "Data-plane enforcement connector: postgres (a login role per grant)."
)
STEWARD_DATAPLANE_POSTGRES = env_json(
    "STEWARD_DATAPLANE_POSTGRES",
    {},
    "JSON {dataset namespace: admin DSN}: PostgreSQL servers whose tables get a login role per grant.",
)
STEWARD_DATAPLANE_OPTIONS = (
    {"databases": STEWARD_DATAPLANE_POSTGRES} if STEWARD_DATAPLANE_CONNECTOR == "postgres" else {}
)
STEWARD_BACKENDS["dataplane"] = {"postgres": "connectors.dataplane.postgres.PostgresDataPlaneConnector"}
STEWARD_DATAPLANE_GRANTS_SELECTOR = env_str(
    "STEWARD_DATAPLANE_GRANTS_SELECTOR",
    "governance.selectors.dataplane_grants",
    "Dotted path of the function returning the DataGrants in force (reconcile drops every other managed role).",
)
STEWARD_DATAPLANE_RECONCILE_SECONDS = env_int(
    "STEWARD_DATAPLANE_RECONCILE_SECONDS", 60, "Seconds between data-plane reconcile runs (ends expired access)."
)
# Scheduled whenever there is a data plane to enforce on (and a selector: an empty one would raise each run).
if STEWARD_DATAPLANE_GRANTS_SELECTOR and STEWARD_DATAPLANE_OPTIONS.get("databases"):
    CELERY_BEAT_SCHEDULE["connectors-dataplane-reconcile"] = {
        "task": "connectors.dataplane_reconcile",
        "schedule": float(STEWARD_DATAPLANE_RECONCILE_SECONDS),
    }

# --- Decision API (governance/api/fastpath.py) ----------------------------------------------------
STEWARD_DECISION_AUTH_CACHE_SECONDS = env_int(
    "STEWARD_DECISION_AUTH_CACHE_SECONDS",
    60,
    "Seconds at most the decision API remembers an API token's user and roles while no token, user or group"
    " changed (any change is seen by the next call; PostgreSQL only); 0: never.",
)
STEWARD_DECISION_INDEX = env_str(
    "STEWARD_DECISION_INDEX",
    "background",
    "Grants kept in each process's memory for decisions, checked against the decision generation on every call"
    " (PostgreSQL): background (rebuilt in a thread when stale), inline (rebuilt by the caller), off.",
)
if STEWARD_DECISION_INDEX not in ("background", "inline", "off"):
    raise ValueError(f"STEWARD_DECISION_INDEX must be background, inline or off, got {STEWARD_DECISION_INDEX!r}")

# --- Grant tokens (governance/services/signing.py) ------------------------------------------------
STEWARD_JWT_ISSUER = env_str("STEWARD_JWT_ISSUER", "steward", "iss claim of grant tokens (e.g. Steward's public URL).")
STEWARD_JWT_AUDIENCE = env_str(
    "STEWARD_JWT_AUDIENCE", "steward-dataplane", "aud claim of grant tokens, checked by data-plane proxies."
)
STEWARD_SIGNING_KEY_ROTATION_HOURS = env_int(
    "STEWARD_SIGNING_KEY_ROTATION_HOURS", 168, "Hours a grant-token signing key is used before it is rotated."
)
# Rotates when due (publishing the next key ahead of use) and deletes retired keys once their tokens expired.
CELERY_BEAT_SCHEDULE["governance-signing-keys"] = {"task": "governance.signing_keys_maintain", "schedule": 600.0}
STEWARD_AUDIT_CHECKPOINT_MINUTES = env_int(
    "STEWARD_AUDIT_CHECKPOINT_MINUTES",
    15,
    "Minutes between signed audit-chain checkpoints (GET /api/v1/audit/checkpoints).",
)
CELERY_BEAT_SCHEDULE["governance-audit-checkpoint"] = {
    "task": "governance.audit_checkpoint",
    "schedule": 60.0 * STEWARD_AUDIT_CHECKPOINT_MINUTES,
}

# --- Sources (sources/, connectors/sources, docs/sources.md) ------------------------------------------
STEWARD_SOURCE_KEY = env_str(
    "STEWARD_SOURCE_KEY",
    "",
    "Key that encrypts sources' credentials at rest (any string; empty: derived from STEWARD_SECRET_KEY).",
)
STEWARD_SOURCE_READERS = env_json(
    "STEWARD_SOURCE_READERS",
    {
        "postgres": "connectors.sources.postgres.PostgresReader",
        "dbt": "connectors.sources.dbt.DbtReader",
    },
    "JSON {source kind: dotted path of its reader class} (connectors/sources).",
)
STEWARD_SOURCE_ALLOWED_PATHS = env_list(
    "STEWARD_SOURCE_ALLOWED_PATHS",
    [],
    "Comma-separated directories whose files sources may read (a dbt project_dir, manifest_path...); "
    "empty: sources read no file on the server.",
)
STEWARD_SOURCE_CRAWLER_USER = env_str(
    "STEWARD_SOURCE_CRAWLER_USER", "steward-crawler", "The account crawls write as (created when missing)."
)
STEWARD_SOURCE_DUE_SECONDS = env_int(
    "STEWARD_SOURCE_DUE_SECONDS", 60, "Seconds between checks for sources whose scheduled crawl is due (Celery beat)."
)
CELERY_BEAT_SCHEDULE["sources-crawl-due"] = {
    "task": "sources.crawl_due",
    "schedule": float(STEWARD_SOURCE_DUE_SECONDS),
}

STEWARD_METRICS_ALLOWED_NETWORKS = env_list(
    "STEWARD_METRICS_ALLOWED_NETWORKS",
    ["127.0.0.1/32", "::1/128"],
    "Networks (CIDR) that may scrape /metrics without logging in; admins may from anywhere (API token).",
)
STATIC_URL = "static/"
STEWARD_SERVE_STATIC = env_bool(
    "STEWARD_SERVE_STATIC",
    False,
    "Serve /static/ from the app itself (the embedded `make run`); off behind a web server.",
)
STATIC_ROOT = STATE_DIR / "static"
# htmx comes from the npm registry (frontend/package.json, installed by `make install`).
STATICFILES_DIRS = [
    ("vendor/htmx", BASE_DIR / "frontend" / "node_modules" / "htmx.org" / "dist"),
    ("vendor/cytoscape", BASE_DIR / "frontend" / "node_modules" / "cytoscape" / "dist"),
]
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

EMAIL_BACKEND = env_str(
    "STEWARD_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend", "Django email backend."
)
DEFAULT_FROM_EMAIL = env_str("STEWARD_EMAIL_FROM", "steward@localhost", "Sender address of notification e-mails.")
STEWARD_PORT = env_str("STEWARD_PORT", "8000", "Port `make run` serves on (scripts/run.sh).")
STEWARD_BASE_URL = env_str(
    "STEWARD_BASE_URL",
    f"http://127.0.0.1:{STEWARD_PORT}",
    "Base URL people reach this service at: links in notification e-mails point at its pages.",
    shown="http://127.0.0.1:$STEWARD_PORT",
)
STEWARD_ACCESS_REQUEST_TTL_HOURS = env_int(
    "STEWARD_ACCESS_REQUEST_TTL_HOURS", 72, "Hours a pending access request waits for its approvals before it expires."
)

LOG_LEVEL = env_str("STEWARD_LOG_LEVEL", "INFO", "Log level for Steward's loggers.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "steward.middleware.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        app: {"level": LOG_LEVEL}
        for app in (
            "steward",
            "ledger",
            "accounts",
            "catalog",
            "lineage",
            "governance",
            "connectors",
            "workspaces",
            "compliance",
        )
    },
}

SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
    }
)
INSTALLED_APPS.append("drf_spectacular_sidecar")

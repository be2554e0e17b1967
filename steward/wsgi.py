import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "steward.settings.base")
django_application = get_wsgi_application()

# The composition root may name an app: data-plane proxies' decision calls and producers' lineage calls skip
# Django's request cycle (governance/api/fastpath.py and lineage/api/fastpath.py say what is kept and why);
# everything else reaches Django unchanged.
from governance.api.fastpath import DecisionFastPath  # noqa: E402
from lineage.api.fastpath import LineageFastPath  # noqa: E402

application = DecisionFastPath(LineageFastPath(django_application))

# Loaded: freeze what lives for the whole process and raise the collector's thresholds (steward/gctune.py).
from steward.gctune import tune  # noqa: E402

tune()

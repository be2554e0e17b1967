import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "steward.settings.base")
django_application = get_wsgi_application()

# The composition root may name an app: data-plane proxies' decision calls skip Django's request cycle
# (governance/api/fastpath.py says what is kept and why); everything else reaches Django unchanged.
from governance.api.fastpath import DecisionFastPath  # noqa: E402

application = DecisionFastPath(django_application)

"""``python -m steward_client``: the ``steward`` command."""

import sys

from steward_client.cli import main

sys.exit(main())

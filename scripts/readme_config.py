"""Rewrite the README's configuration table from the variables the code declares (``make docs``)."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
env = {**os.environ, "STEWARD_STATE_DIR": tempfile.mkdtemp(), "DJANGO_SETTINGS_MODULE": "steward.settings.base"}
env.pop("DATABASE_URL", None)
table = subprocess.run(
    [sys.executable, "manage.py", "steward_config", "--markdown"],
    cwd=ROOT,
    env=env,
    check=True,
    capture_output=True,
    text=True,
).stdout.strip()
readme = ROOT / "README.md"
text = readme.read_text()
new = re.sub(
    r"<!-- config:start -->.*<!-- config:end -->",
    f"<!-- config:start -->\n{table}\n<!-- config:end -->",
    text,
    flags=re.S,
)
readme.write_text(new)
print("README configuration table", "updated" if new != text else "unchanged")

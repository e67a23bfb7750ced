"""Suite-wide setup: put ``tests/support`` on the import path for helpers shared across folders.

Test folders are not packages (a package named ``http`` would hide the standard library's),
so shared helpers live in ``tests/support`` and are imported by module name.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

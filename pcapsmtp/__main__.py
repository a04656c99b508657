from __future__ import annotations

import sys

from pcapsmtp.cli import main

sys.exit(main())

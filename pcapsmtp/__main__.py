from __future__ import annotations

import sys

from pcapsmtp.commands.main import main

sys.exit(main())

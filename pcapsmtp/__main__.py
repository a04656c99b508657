from __future__ import annotations

from pcapsmtp.commands.main import run

run()

"""What `analyze --format json` imports: only what it runs (issue 15, the 10 k-packet file end to
end in 0.3 s). The other commands' renderers, the certificate parser (no certificate in this
capture) and the optional heavy libraries stay out of the process."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "captures" / "client-did-not-request.pcap"

NOT_IMPORTED = ["pcapsmtp.render.explain", "pcapsmtp.analysis.exchange", "pcapsmtp.render.html",
                "pcapsmtp.analysis.vantage", "cryptography", "scapy", "pyshark", "tabulate", "jinja2"]


def test_analyze_json_imports_only_what_it_runs() -> None:
    code = textwrap.dedent(f"""
        import io, sys
        from pcapsmtp.commands.main import main
        out = io.StringIO()
        rc = main(["analyze", "--format", "json", {str(CAPTURE)!r}], out=out, err=io.StringIO())
        assert '"reason": "client-did-not-request"' in out.getvalue(), out.getvalue()
        print(sorted(m for m in {NOT_IMPORTED!r} if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"

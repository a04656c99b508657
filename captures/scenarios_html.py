"""Scenarios for the HTML report (issue 16): text from a capture that would run as markup or
script if a page pasted it in unescaped. ``tests/html`` opens the report of this capture in a
real browser and checks that nothing runs and that every string is shown as text."""
from __future__ import annotations

from generate import QUIT_STEPS, Capture, Conv, Expect, lines

#: The strings a page must show as text; ``tests/html`` looks for each of them.
HOSTILE_EHLO = "<img src=x onerror=alert(1)>"
HOSTILE_BANNER_NAME = "<script>alert(2)</script>"
HOSTILE_DOMAIN_LINE = "\"><svg onload=alert(3)>.example.com"
HOSTILE_SENDER = "\"</script><script>alert(4)</script>\"@example.org"
HOSTILE_RECIPIENT = "{{7*7}}&amp;<!--@example.com"


def scenarios() -> list[Capture]:
    c = Conv(cport=40600)
    c.s(f"220 {HOSTILE_BANNER_NAME} ESMTP\r\n".encode(), tag="banner")
    c.c(f"EHLO {HOSTILE_EHLO}\r\n".encode(), tag="greeting")
    c.s(lines(f"250-{HOSTILE_DOMAIN_LINE}", "250-PIPELINING", "250-X-<iframe src=//evil.example>",
              "250 SIZE 10240000"), tag="ehlo_reply")
    c.c(f"MAIL FROM:<{HOSTILE_SENDER}>\r\n".encode())
    c.s(b"250 2.1.0 Ok\r\n")
    c.c(f"RCPT TO:<{HOSTILE_RECIPIENT}>\r\n".encode())
    c.s(b"250 2.1.5 <b>Ok</b>\r\n")
    c.c(b"DATA\r\n")
    c.s(b"354 go ahead <style>body{display:none}</style>\r\n")
    c.c(b"Subject: <script>alert(5)</script>\r\n\r\n<img src=x onerror=alert(6)>\r\n.\r\n")
    c.s(b"250 2.0.0 queued as </textarea><script>alert(7)</script>\r\n")
    c.extend(QUIT_STEPS)
    return [Capture("xss-html-injection.pcap",
                    "markup and script in the banner, the EHLO argument (<img src=x onerror=alert(1)>), "
                    "the EHLO reply, the envelope and the replies; no STARTTLS offered; the HTML report "
                    "must show every string as text",
                    [(c, Expect("plaintext", "server", "starttls-not-offered", "absent",
                                findings=[("ehlo-bad-keyword", "server", "ehlo_reply")]))])]

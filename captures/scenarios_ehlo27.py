"""EHLO sent more than once before STARTTLS or any mail (the twenty-seventh session,
``analysis/verdict.py`` ``_earlier_ehlo_findings``, ``analysis/clients.py``
``starttls_kept_across_ehlo``; the twenty-sixth session's captures of a second EHLO are
``smtp26-second-ehlo-*``, captures/scenarios_smtp26.py).

The verdict reads the reply the client acted on, the last positive one (RFC 5321 4.1.4: EHLO again
resets the session). The defects of the earlier replies went unreported; they are findings of the
server, each at its own frame, and the verdict stays that of the last reply:

- ``reehlo27-first-reply-starttls-on-line-one-then-tls.pcap``: the first reply puts STARTTLS on line
  one, where the server's domain belongs (``ehlo-keyword-as-domain``); EHLO again, a reply that
  offers it, STARTTLS and TLS: ``tls``, the finding at the first reply's frame (it had none).
- ``reehlo27-both-replies-bad-keyword-then-tls.pcap``: both replies carry ``250-#PIPELINING``, the
  first without STARTTLS, the second with it; STARTTLS and TLS: ``tls``, an ``ehlo-bad-keyword``
  at each reply's frame (two findings: each names the frame that holds the line).

Clients that keep an earlier offer: MailKit's ``UpdateCapabilities`` clears every capability but
STARTTLS before it reads a reply, so an offer of an earlier EHLO reply outlives a later one that
withdraws it (docs/clients.md); the prediction listed MailKit among the clients that downgrade:

- ``reehlo27-third-ehlo-withdraws-starttls.pcap``: three EHLOs, the first reply offers STARTTLS, the
  two after it do not; the mail in the clear: ``starttls-not-offered``, the server's; MailKit alone
  sees STARTTLS.
- ``reehlo27-second-ehlo-withdraws-unseen-offer.pcap``: the first reply offers ``STARTTLS 1`` (a
  parameter STARTTLS does not take: ``ehlo-starttls-parameter``; MailKit compares the whole line
  and does not see it), the second none; the mail in the clear: the server's, MailKit downgrades
  with the others (an offer the client did not see is no flag to keep).
- The other way round, a first reply without STARTTLS and a second with it, is
  ``reehlo27-both-replies-bad-keyword-then-tls.pcap``: every client sees the offer.
"""
from __future__ import annotations

from generate import BANNER, EHLO, EHLO_NO_TLS, EHLO_OK, Capture, Conv, Expect, lines, mail_in_clear, starttls_ok

#: STARTTLS on line one, the server's domain pushed to line two
STARTTLS_ON_LINE_ONE = lines("250-STARTTLS", "250-mx.example.com", "250-PIPELINING", "250-SIZE 10240000",
                             "250 8BITMIME")
#: a line that does not start with a valid keyword, without and with STARTTLS
BAD_NO_TLS = lines("250-mx.example.com", "250-#PIPELINING", "250-SIZE 10240000", "250 8BITMIME")
BAD_TLS = lines("250-mx.example.com", "250-#PIPELINING", "250-SIZE 10240000", "250-STARTTLS", "250 8BITMIME")
#: STARTTLS with a parameter
STARTTLS_PARAMETER = lines("250-mx.example.com", "250-PIPELINING", "250-STARTTLS 1", "250 8BITMIME")


def ehlos(cport: int, replies: list[bytes], *, starttls: bool) -> Conv:
    """EHLO answered by each of ``replies`` in turn (the last one the client acts on, tag
    ``ehlo_reply``; the others ``reply1``, ``reply2``...), then STARTTLS and the mail inside TLS
    (``starttls``) or the mail in the clear."""
    c = Conv(cport=cport).s(BANNER, tag="banner").c(EHLO, tag="greeting")
    for n, reply in enumerate(replies, start=1):
        if n > 1:
            c.c(EHLO, tag=f"ehlo{n}")
        c.s(reply, tag="ehlo_reply" if n == len(replies) else f"reply{n}")
    if starttls:
        return starttls_ok(c, f"ehlo27 ehlos {cport}")
    return mail_in_clear(c, first_tag="mail")


def scenarios() -> list[Capture]:
    tls = ("tls", "none", "tls-established", "valid", True, 220)
    return [
        Capture("reehlo27-first-reply-starttls-on-line-one-then-tls.pcap",
                "EHLO answered with STARTTLS on line one (the domain's place), EHLO again answered with a "
                "valid offer, STARTTLS and TLS: the first reply's defect is still the server's finding",
                [(ehlos(49701, [STARTTLS_ON_LINE_ONE, EHLO_OK], starttls=True),
                  Expect(*tls, findings=[("ehlo-keyword-as-domain", "server", "reply1")]))]),
        Capture("reehlo27-both-replies-bad-keyword-then-tls.pcap",
                "EHLO answered without STARTTLS and with a line '250-#PIPELINING', EHLO again answered with "
                "STARTTLS and the same line, STARTTLS and TLS: a finding at each reply",
                [(ehlos(49702, [BAD_NO_TLS, BAD_TLS], starttls=True),
                  Expect(*tls, findings=[("ehlo-bad-keyword", "server", "reply1"),
                                         ("ehlo-bad-keyword", "server", "ehlo_reply")]))]),
        Capture("reehlo27-third-ehlo-withdraws-starttls.pcap",
                "EHLO three times, the first reply offers STARTTLS, the two after it do not, the mail in the "
                "clear: the server's; MailKit keeps the first offer",
                [(ehlos(49703, [EHLO_OK, EHLO_NO_TLS, EHLO_NO_TLS], starttls=False),
                  Expect("plaintext", "server", "starttls-not-offered", "absent"))]),
        Capture("reehlo27-second-ehlo-withdraws-unseen-offer.pcap",
                "EHLO answered with 'STARTTLS 1', EHLO again answered without STARTTLS, the mail in the "
                "clear: the server's; MailKit never saw the first offer",
                [(ehlos(49704, [STARTTLS_PARAMETER, EHLO_NO_TLS], starttls=False),
                  Expect("plaintext", "server", "starttls-not-offered", "absent",
                         findings=[("ehlo-starttls-parameter", "server", "reply1")]))]),
    ]

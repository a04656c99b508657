"""TCP reassembly, independent of the capture source.

``TcpReassembler.feed(TcpSegment)`` returns flow events (``tcp.events``): which SMTP
candidate conversations start, the bytes of each side in sequence order with the frame
that carried them, gaps, conflicting overlaps and the end of each side. It also numbers
every TCP conversation in the file the way Wireshark's ``tcp.stream`` does.
Imports only the standard library and ``pcapsmtp.model``.
"""

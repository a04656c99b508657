"""Capture sources: everything that turns files, interfaces or tshark output into
``TcpSegment`` objects. The only layer that touches files, sockets, scapy or pyshark."""

"""The engine: drives capture -> tcp -> smtp -> analysis for a file, a live source or tshark,
the fused file loop, and the order in which finished conversations are handed out."""

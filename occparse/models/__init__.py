"""The model zoo: the shipped models' manifest with pinned sha256, where they are (``zoo``, the
``occparse models`` command), and their int8 copies for the CPU (``quantize``)."""

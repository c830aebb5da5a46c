"""Drive the test bed: the chroot Asterisk, SIPp callers, tshark captures, espeak-ng speech.

Used by the integration tests, the benchmarks and the demo (``python -m testbed.demo``). It
lives beside ``tests/``, outside the shipped package: it needs a source checkout (it runs
``scripts/testbed`` and reads ``asterisk-conf/testbed``, both found from the repo root) and the
host tools that ``scripts/install-testbed`` installs; every helper fails with a message naming
what is missing.
"""

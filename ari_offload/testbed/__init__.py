"""Drive the test bed: the chroot Asterisk, SIPp callers, tshark captures, espeak-ng speech.

Used by the integration tests, the benchmarks and the demo. Needs the host tools that
``scripts/install-testbed`` installs; every helper fails with a message naming what is missing.
"""

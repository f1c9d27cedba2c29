"""`python -m harvester ...` is `oai ...` (for systemd units and tests that run a real process)."""

from oai.cli import main

main(prog_name="oai")

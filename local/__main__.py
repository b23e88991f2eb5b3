from local.cli import main

raise SystemExit(main(prog="python -m local"))

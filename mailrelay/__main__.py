"""`python -m mailrelay`: the same as the `mailrelay` command."""
import sys

from mailrelay.cli import main

sys.exit(main())

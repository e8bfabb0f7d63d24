import sys

from relayrl_cli.main import main

sys.exit(main())

import sys

from hardneg.cli.main import main

sys.exit(main())

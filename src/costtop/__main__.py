import sys

from costtop.cli import main

sys.exit(main())

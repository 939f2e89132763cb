import sys

from coldtrace.cli import main

sys.exit(main())

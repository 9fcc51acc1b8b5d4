import sys

from lab.stack import main

sys.exit(main())

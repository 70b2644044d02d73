import sys

from workbench.train.entry import main

if len(sys.argv) != 2:
    sys.exit("usage: python -m workbench.train RUN_DIR")
sys.exit(main(sys.argv[1]))

"""Fails the way entry points do: writes the failure file, then exits non-zero."""

import os
import sys


def main():
    print("starting, about to fail")
    with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
        f.write("ValueError: learning_rate must be positive, got -1")
    sys.exit(3)


if __name__ == "__main__":
    main()

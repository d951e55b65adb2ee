"""Trains fine, but its model_fn raises: the endpoint must fail fast with the reason."""

import os


def model_fn(model_dir):
    raise RuntimeError("broken_model: cannot load %s" % model_dir)


def main():
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "weights.txt"), "w") as f:
        f.write("0")


if __name__ == "__main__":
    main()

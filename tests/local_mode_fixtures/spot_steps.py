"""A script that checkpoints every step to /opt/ml/checkpoints and resumes from the newest one.

Each step writes ``step-NNNN.json`` (the steps done so far and how many times the
job started) through a temporary file and a rename, as a spot-safe script must.
At the end it saves that state as ``result.json`` in the model directory, with
what the checkpoint directory held when the script started.
"""

import argparse
import json
import os
import re
import signal
import time

CHECKPOINTS = "/opt/ml/checkpoints"


def newest(directory):
    steps = sorted(int(m.group(1)) for m in map(re.compile(r"^step-(\d+)\.json$").match, os.listdir(directory)) if m)
    if not steps:
        return {"steps": [], "starts": 0}
    with open(os.path.join(directory, "step-%04d.json" % steps[-1])) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--step-seconds", type=float, default=0.3)
    parser.add_argument("--ignore-sigterm", default="false")
    parser.add_argument(
        "--hang-writing-step",
        type=int,
        default=0,
        help="on the first start, stop half-way through this step's checkpoint",
    )
    args = parser.parse_args()
    if args.ignore_sigterm == "true":
        signal.signal(signal.SIGTERM, lambda *a: print("SIGTERM ignored", flush=True))
    found = sorted(os.listdir(CHECKPOINTS))
    state = newest(CHECKPOINTS)
    state["starts"] += 1
    print("start %d with %d step(s) done" % (state["starts"], len(state["steps"])), flush=True)
    while len(state["steps"]) < args.steps:
        time.sleep(args.step_seconds)
        state["steps"].append(len(state["steps"]) + 1)
        path = os.path.join(CHECKPOINTS, "step-%04d.json" % len(state["steps"]))
        with open(path + ".tmp", "w") as f:
            text = json.dumps(state)
            if state["starts"] == 1 and len(state["steps"]) == args.hang_writing_step:
                f.write(text[: len(text) // 2])
                f.flush()
                print("writing step %d" % len(state["steps"]), flush=True)
                time.sleep(3600)  # until the reclaim
            f.write(text)
        os.replace(path + ".tmp", path)
        print("step %d" % len(state["steps"]), flush=True)
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "result.json"), "w") as f:
        json.dump(dict(state, found=found), f)


if __name__ == "__main__":
    main()

"""The supervisor on programs of a test's own: ``python -m tests.ops.supervised SPEC``, SPEC in
JSON: ``{"grace_seconds": 1, "backoff": {"initial": 0.1, ...}, "programs": [{"name", "argv"}]}``."""

import json
import sys

from servicekit.logs import configure_logging
from servicekit.supervisor import Backoff, Program, supervise


def main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    configure_logging()
    programs = [Program(program["name"], program["argv"]) for program in spec["programs"]]
    backoff = Backoff(**spec["backoff"])
    return supervise(programs, grace_seconds=spec["grace_seconds"], backoff=backoff)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

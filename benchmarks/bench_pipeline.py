"""Per-stage latency and end-to-end images/s of occparse, with the machine's facts.

    python benchmarks/bench_pipeline.py --images bench/images -n 200
    python benchmarks/bench_pipeline.py --device cuda        # with onnxruntime-gpu

Same as `occparse benchmark`. Run it on an otherwise idle machine.
"""

import sys

from occparse.evaluation.benchmark import main

if __name__ == "__main__":
    sys.exit(main())

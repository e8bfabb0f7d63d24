"""`relayrl bench`: RelayRL against Stable-Baselines3 A2C and against the one-core ceiling, in one run.

Sections: ceilings.py (env alone, env + batched inference), pipeline.py (`relayrl train` throughput and
time to solve), sb3.py (the alternative, same machine, same seeds), transport.py (codec, broadcast
latency, message sizes); main.py runs them and writes bench.json and bench.md.
"""

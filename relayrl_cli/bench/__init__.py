"""`relayrl bench`: RelayRL against Stable-Baselines3 A2C and against the one-core ceiling, in one run.

Sections: ceilings.py (env alone, env + batched inference), pipeline.py (`relayrl train` throughput and
time to a held solve), sb3.py (the alternative, same machine, same seeds), transport.py (codec, broadcast
latency, message sizes); solve.py (first crossing and held solve of a learning curve, for both sides);
main.py runs them and writes bench.json and bench.md. `--suite learning` runs learning.py instead: final
greedy returns per env against SB3 with rl-baselines3-zoo's A2C hyperparameters (zoo.py).
"""

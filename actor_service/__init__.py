"""The actor service: steps a batch of environments with a local policy copy and streams to the learner."""

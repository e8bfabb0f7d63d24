"""The learner service: owns the model and optimizer, runs A2C or A3C updates, broadcasts weights."""

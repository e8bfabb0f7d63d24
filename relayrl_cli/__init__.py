"""The commands (`relayrl train|learner|actor|eval|plot|bench`): they start, drive and measure the services.

The top layer: it may import both services and the shared library; nothing imports it.
"""

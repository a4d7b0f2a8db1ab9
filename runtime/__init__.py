"""Worlds that WorldBridge serves: the procedural maze (ground truth) and neural world models.

Nothing in this package knows about ZeroMQ or the wire protocol; the daemon talks to worlds only through
`runtime.world.World`.
"""

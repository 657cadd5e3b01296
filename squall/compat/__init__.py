"""Compatibility packages: streamparse and heronpy code runs on Squall with only its import
prefix changed (``streamparse`` -> ``squall.compat.streamparse``, ``heronpy`` ->
``squall.compat.heronpy``). They mirror those libraries' public module paths and signatures
on top of Squall's own API; what has no counterpart (JVM components, multilang shell
components, custom Java groupings) is refused with a message saying so. docs/porting.md has
the map and the one-line ``sed``.
"""

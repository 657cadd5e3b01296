"""heronpy on Squall: ``squall.compat.heronpy.api...`` mirrors ``heronpy.api...`` (spout,
bolt, topology with ``TopologyBuilder``, stream, tuple, api_constants, global_metrics,
metrics), so a heron Python topology runs with only its import prefix changed.

What differs (docs/porting.md): ``build_and_submit()`` hands the topology to the ``squall``
command running the script instead of writing Heron's definition files; Heron's reliability
modes map to Squall's acker (ATMOST_ONCE, Heron's default, runs without ackers;
EFFECTIVELY_ONCE is refused); custom groupings, task hooks, stateful components and
streamlets do not exist here.
"""

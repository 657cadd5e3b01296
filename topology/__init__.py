"""The user API: components, groupings, the topology DSL, validation and the serialisable spec."""

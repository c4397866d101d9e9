"""REST routers of the telemetry API, one per resource."""

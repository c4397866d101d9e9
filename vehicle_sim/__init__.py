"""vehicle_sim package."""

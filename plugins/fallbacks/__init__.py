"""Fallback plugins: what decides when the model abstains or fails."""

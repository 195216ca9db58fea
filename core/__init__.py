"""The minimal core: contracts, action space, plugin system, configuration. Never imports torch."""

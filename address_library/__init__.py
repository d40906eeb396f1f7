"""address_library package."""

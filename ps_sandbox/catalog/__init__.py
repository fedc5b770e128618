"""What each emulated platform's tenant has: its objects and their fields, taken from the
vendors' own reference documentation (plus the customizations a real tenant of the firm would
carry), never from the pipeline's data contracts, so a wrong field name in a contract fails
against the emulator the way it would fail against a real tenant."""

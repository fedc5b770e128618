"""What each platform documents about its objects, written from the vendors' own documents
(plus the customizations a real tenant of the firm would carry, marked as such).

The emulation serves, accepts and validates records by these catalogues, never by the
pipeline's data contracts: a field the pipeline misnames must then go missing in ingestion,
the way it would against a real tenant. Attributes the sandbox serves although the vendor
does not document them are kept apart (``extensions``), each with the reason, so a test can
hold the list and stop it from growing.
"""

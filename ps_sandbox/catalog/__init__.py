"""Vendor catalogues: what each emulated platform documents, independent of the pipeline."""

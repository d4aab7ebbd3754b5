"""Provider adapters: one module per API shape (see base.Adapter)."""

"""What the dashboard pages read: one module per page, each a set of functions over the store."""

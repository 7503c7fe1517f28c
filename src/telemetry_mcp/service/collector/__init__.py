"""The collector: one module per wire format, each mapping its body to our events (SPEC section 2)."""

"""Container side: the process runc starts in place of the guest."""

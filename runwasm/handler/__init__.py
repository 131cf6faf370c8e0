"""Host side: argv, classification, spec rewrite, delegate exec, logging."""

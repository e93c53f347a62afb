"""What every area shares: errors, Principal and roles, Page and its cursor codec, context, geo, PII, working time."""

"""Home visits to elders: elders, periods, schedules, tiers and visit records; owns `visits`, `elders`, `elder_audit`."""

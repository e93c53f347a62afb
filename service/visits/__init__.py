"""Home visits to elders: the register, periods, schedules, tiers and visit records; owns `visits` and `elders`."""

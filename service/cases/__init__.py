"""Cases: submission, reading, actions, sweeps and KPIs; owns `cases`, `events`, `counters`."""

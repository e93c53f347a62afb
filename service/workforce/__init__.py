"""The social-work workforce (社会工作人才): the register, training, reference figures and the plan's indicators.

``models`` holds the typed records, ``rules`` the pure decisions (who sees what, indicator
arithmetic), ``checks`` the pure row checks (register fields, training rows), ``targets`` the
plan-target table read from ``config/plan_targets.toml``, ``repository`` the collections this
area owns (and only those), and ``register``, ``register_import``, ``training``, ``figures``
and ``plan`` the service functions. Stations, visits and staff
accounts are read through their own service functions.
"""

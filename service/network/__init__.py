"""The station network against the plan (社工站建设): construction status, the six haves (六有) with
evidence, supervisors' verification, coverage of every township and CSV import and export.

Other areas read its figures through :func:`service.network.service.division_coverage`.
"""

"""The collections of the volunteer service, and only these, one module per collection group.

``volunteers`` (ID number encrypted, with a keyed lookup hash), ``volunteer_teams``,
``volunteer_activities``, ``volunteer_signups`` (one per activity and volunteer),
``volunteer_attendance`` (one per activity and volunteer, with its append-only history) and
``volunteer_certificates`` (unique number and verification code) with
``volunteer_certificate_counters`` (one serial counter per issuing station and year). Stations, cases and
residents are read through their own areas' service functions, never here.
"""

"""Volunteer service (志愿服务, 民政部令第67号): volunteers, teams, activities, attendance, hours, certificates.

``models`` holds the typed records, ``rules`` the pure decisions (hours, overlaps, check-in
codes, certificate numbers), ``access`` what every verb shares (who may see and organise,
the event outbox), the verb-named functions that enforce who may do what in ``registration``,
``teams``, ``activities``, ``tasks`` (from cases), ``signups``, ``attendance``, ``hours``,
``records``, ``certificates`` and ``kpis`` (with the CSV export), ``repository`` the
collections this area owns (``volunteers``, ``volunteer_*``), and ``certificate_pdf`` the PDF
of a certificate (志愿服务记录证明).
"""

"""The collections the workforce area owns, and only those.

``workforce_people`` (the register; ID number stored encrypted, with a keyed hash for lookup
and a masked copy), ``workforce_history`` (one entry per change, never edited),
``training_programmes``, ``training_sessions``, ``training_records`` (enrolment,
attendance, completion) and ``reference_figures``. Every id is a string made by
:func:`service.ids.new_id`. The document builders in ``people`` and ``training`` are the one
shape these collections hold; the benchmark loads its data through them too. ``indexes``
names the collections, ``store`` reads and writes them.
"""

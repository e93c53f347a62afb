"""Alerts (物联网、人工智能): devices linked to people on the visit register, alert intake from
vendors, the on-duty rota, escalation of unsigned urgent alerts, and the maintenance list.

SOS, fall and smoke alerts open an urgent 紧急求助 case at once (through the cases area),
no-activity alerts put a check-up due today on the visit due list (through the visits area),
low battery and offline go to the station's maintenance list. See docs/alerts.md.
"""

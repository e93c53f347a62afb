"""Stations, their areas, routing of cases to stations and administrative divisions; owns `stations`."""

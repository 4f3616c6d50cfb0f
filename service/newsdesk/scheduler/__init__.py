"""The daemon's room: APScheduler lives here and nowhere else.

``daemon`` runs the jobs on their triggers; ``triggers`` turns schedules into times.
"""

"""The clock: APScheduler 3 in UTC, used only to call domain passes. All state lives in the database."""

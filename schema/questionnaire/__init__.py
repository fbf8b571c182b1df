"""Questionnaires and instrument definitions in the GraphQL API."""
